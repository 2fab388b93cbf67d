import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The HTTP/1.1 connection pipeline: Hummingbird's, with trailwatch's limits. Over-long request
/// lines and headers are answered 431 with a message saying which limit was hit (Hummingbird's
/// own channel answers a bare 400), other malformed requests 400, and a request that does not
/// arrive completely within the read timeout closes the connection.
struct HTTPConnectionChannel: ServerChildChannel {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    /// Answers one request; returns false when the connection must close afterwards.
    typealias Handler = @Sendable (Request, consuming ResponseWriter, any Channel) async -> Bool

    let settings: HTTPServerSettings
    let handler: Handler

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            // The decoder counts the request line against the single-field limit too.
            limits.maxHeaderFieldSize = settings.maxRequestLineBytes
            limits.maxHeaderListSize = settings.maxHeaderBytes
            limits.maxHeaderFieldCount = settings.maxHeaderCount
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: settings.tls != nil))
            try channel.pipeline.syncOperations.addHandler(RequestReadDeadlineHandler(seconds: settings.requestReadTimeoutSeconds))
            try channel.pipeline.syncOperations.addHandler(
                HTTPConnectionStateHandler(idleTimeout: .milliseconds(Int64(settings.idleTimeoutSeconds * 1000)), logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        do {
            try await withTaskCancellationHandler {
                try await asyncChannel.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    do {
                        guard let first = try await iterator.next() else { return }
                        guard case .head(var head) = first else { return }
                        while true {
                            let request = Request(head: head, body: RequestBody(asyncSequence: BodyParts(iterator: iterator)))
                            let keepAlive = await handler(request, ResponseWriter(outbound: outbound), asyncChannel.channel)
                            if !keepAlive || head.headerFields[.connection]?.lowercased() == "close" { break }
                            // Skip what the handler did not read of the body, then expect the next head.
                            var part: HTTPRequestPart?
                            repeat { part = try await iterator.next() } while part?.isBody == true
                            if case .end = part { part = try await iterator.next() }
                            guard let part, case .head(let next) = part else { break }
                            head = next
                        }
                    } catch let error as HTTPParserError {
                        let (status, message): (Int, String) = switch error {
                        case .headerOverflow:
                            (431, "Request line or headers too large: at most \(settings.maxRequestLineBytes) bytes per line, \(settings.maxHeaderBytes) bytes and \(settings.maxHeaderCount) headers in all.\n")
                        default:
                            (400, "Malformed HTTP request (\(error)).\n")
                        }
                        var fields = HTTPFields()
                        fields[.connection] = "close"
                        fields[.contentType] = "text/plain; charset=utf-8"
                        fields[.contentLength] = String(message.utf8.count)
                        try await outbound.write(.head(HTTPResponse(status: .init(code: status), headerFields: fields)))
                        try await outbound.write(.body(ByteBuffer(string: message)))
                        try await outbound.write(.end(nil))
                    }
                    outbound.finish()
                }
            } onCancel: {
                asyncChannel.channel.close(mode: .input, promise: nil)
            }
        } catch {
            logger.trace("connection ended: \(error)")
        }
    }
}

/// The body parts of the current request, read from the connection's part stream until `.end`.
/// The iterator is shared with the connection loop, which continues after the handler returns,
/// so this wrapper is only iterated by one request at a time.
struct BodyParts: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    let iterator: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator

    struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator
        var done = false

        mutating func next() async throws -> ByteBuffer? {
            guard !done else { return nil }
            switch try await iterator.next() {
            case .body(let buffer): return buffer
            case .end, nil: done = true; return nil
            case .head: throw HTTPParserError.invalidInternalState
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(iterator: iterator) }
}

/// Closes a connection whose request does not arrive completely (head and body) within
/// `seconds` of its first byte. Idle keep-alive connections are the idle timeout's business;
/// this catches clients that trickle a request a byte at a time, which an idle timeout never sees.
final class RequestReadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// A request was completed by the read in progress: the bytes of that read are accounted for.
    private var completedInThisRead = false

    init(seconds: Double) {
        timeout = .milliseconds(Int64(seconds * 1000))
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context)
        case .end:
            deadline?.cancel()
            deadline = nil
            completedInThisRead = true
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes arrived; unless they completed a request, a request has started.
        if !completedInThisRead { arm(context) }
        completedInThisRead = false
        context.fireChannelReadComplete()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}

extension HTTPRequestPart {
    var isBody: Bool {
        if case .body = self { return true }
        return false
    }
}
