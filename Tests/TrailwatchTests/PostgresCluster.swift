import Foundation
import Glibc

/// One throw-away PostgreSQL cluster per test process: initdb + pg_ctl from Debian's
/// postgresql package on a free loopback port (its socket in the same temporary directory),
/// password authentication over TCP, trust on the socket for the helper's own psql calls.
/// Each test takes its own database. The cluster stops when the test process exits, and a
/// watchdog process stops it within a second should the test process die any other way
/// (kill -9, a crash), so no postgres outlives a test run.
///
/// As root (CI), initdb refuses to run; the cluster then runs as the `postgres` system user that
/// the package creates (through runuser).
final class PostgresCluster: @unchecked Sendable {
    static let user = "trailwatch"
    static let password = "tw-test-secret"

    let directory: String
    let port: Int
    let binaries: String
    private let runAs: String?
    private var counter = 0
    private let lock = NSLock()

    /// The cluster, or nil (with `unavailableReason`) when PostgreSQL is not installed.
    static let shared: PostgresCluster? = {
        do { return try PostgresCluster() } catch {
            unavailableReason = "\(error)"
            return nil
        }
    }()
    nonisolated(unsafe) static var unavailableReason = ""

    /// A message for tests that skip.
    static var skipMessage: String {
        "skipping: no PostgreSQL server (\(unavailableReason)); make test installs Debian's postgresql package when it can"
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private init() throws {
        let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        guard let bin = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl") }) else {
            throw Failure(description: "no /usr/lib/postgresql/*/bin/pg_ctl")
        }
        binaries = bin
        runAs = getuid() == 0 ? "postgres" : nil
        var template = Array("/tmp/trailwatch-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "cannot make a temporary directory") }
        directory = String(cString: made)
        // Which test process owns the cluster: `make test`'s clean-up leaves clusters of live
        // processes alone (another test run on the same machine).
        _ = FileManager.default.createFile(atPath: directory + "/owner.pid", contents: Data("\(getpid())\n".utf8))
        port = Self.freePort()
        if let runAs {
            guard let account = getpwnam(runAs) else { throw Failure(description: "running as root and there is no '\(runAs)' user to run PostgreSQL as") }
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
        }
        chmod(directory, 0o700)
        let passwordFile = directory + "/pw"
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data(Self.password.utf8))
        if let runAs, let account = getpwnam(runAs) { chown(passwordFile, account.pointee.pw_uid, account.pointee.pw_gid) }
        try run(bin + "/initdb", ["-D", directory + "/data", "-U", Self.user, "--pwfile", passwordFile, "--auth-local=trust",
                                 "--auth-host=scram-sha-256", "--locale=C", "-E", "UTF8", "--no-sync"])
        startWatchdog()
        try start()
        atexit { PostgresCluster.shared?.stopQuietly() }
    }

    /// Runs blocking work (initdb, pg_ctl, psql: each ends in waitpid) on a thread of its own.
    /// Tests await it instead of calling the tools directly: a test that blocks one of the
    /// cooperative pool's threads (two on a 2-core CI machine) — or two tests waiting on the
    /// cluster's one-time start — stalls every other test in the process.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// The shared cluster, started off the cooperative pool on first use.
    static func sharedStarted() async -> PostgresCluster? {
        (try? await offPool { PostgresCluster.shared }) ?? nil
    }

    /// ``psql(_:database:)``, ``stop(mode:)`` and ``start()`` off the cooperative pool.
    func psqlAsync(_ sql: String, database: String = "postgres") async throws -> String {
        try await Self.offPool { try self.psql(sql, database: database) }
    }

    func stopAsync(mode: String = "fast") async throws { try await Self.offPool { try self.stop(mode: mode) } }

    func startAsync() async throws { try await Self.offPool { try self.start() } }

    /// `postgres://trailwatch:PASSWORD@127.0.0.1:PORT/DATABASE`.
    func url(_ database: String, password: String = PostgresCluster.password) -> String {
        "postgres://\(Self.user):\(password)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// A new, empty database for one test; returns its URL.
    func makeDatabase(_ prefix: String = "t") throws -> String {
        let name: String = lock.withLock {
            counter += 1
            return "\(prefix)_\(getpid())_\(counter)"
        }
        try psql("CREATE DATABASE \(name)")
        return url(name)
    }

    /// Runs SQL through psql over the Unix socket; returns its output (unaligned, tuples only).
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run(binaries + "/psql", ["-h", directory, "-p", String(port), "-U", Self.user, "-d", database, "-v", "ON_ERROR_STOP=1",
                                     "-X", "-A", "-t", "-c", sql], asServer: false)
    }

    func start() throws {
        try run(binaries + "/pg_ctl", ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                                       "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=64MB",
                                       "start"])
    }

    func stop(mode: String = "fast") throws {
        try run(binaries + "/pg_ctl", ["-D", directory + "/data", "-m", mode, "-w", "stop"])
    }

    private func stopQuietly() {
        try? stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A detached shell that stops the cluster once this process is gone, however it went (kill -9,
    /// a crash): it polls this process's pid. (It used to wait for the end of a pipe only this
    /// process held; a file descriptor is too easy to lose — one stray close anywhere in the test
    /// process, and the cluster vanished under the tests still using it.)
    private func startWatchdog() {
        let ctl = "\(binaries)/pg_ctl -D \(directory)/data -m immediate stop"
        let stopCommand = runAs.map { "runuser -u \($0) -- \(ctl)" } ?? ctl
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done; \(stopCommand) >/dev/null 2>&1; rm -rf \(directory)"
        _ = try? spawn(["/usr/bin/setsid", "/bin/sh", "-c", script], stdin: -1, output: "/dev/null", wait: false)
    }

    /// Runs a tool (as the server's user when running as root) and returns its output; throws
    /// when it fails. posix_spawn and waitpid, not Foundation's Process: pg_ctl leaves a server
    /// running behind it, and the test process must neither share a pipe with it nor depend on
    /// anything but waitpid to see the tool end.
    @discardableResult
    private func run(_ tool: String, _ arguments: [String], asServer: Bool = true) throws -> String {
        let argv = asServer && runAs != nil ? ["/usr/sbin/runuser", "-u", runAs!, "--", tool] + arguments : [tool] + arguments
        let outputPath = directory + "/tool-\(UUID().uuidString).out"
        defer { unlink(outputPath) }
        let status = try spawn(argv, stdin: -1, output: outputPath, wait: true)
        let text = String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self)
        guard status == 0 else {
            throw Failure(description: "\((tool as NSString).lastPathComponent) failed (\(status)): \(text.suffix(600))")
        }
        return text
    }

    /// Spawns argv with stdin from `stdin` (or /dev/null) and stdout+stderr to `output`; waits for its exit status when asked.
    private func spawn(_ argv: [String], stdin: Int32, output: String, wait: Bool) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin >= 0 { posix_spawn_file_actions_adddup2(&actions, stdin, 0) } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        guard wait else { return 0 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// A free loopback port (the suite's ``freePort()``).
    static func freePort() -> Int { TrailwatchTests.freePort() }
}
