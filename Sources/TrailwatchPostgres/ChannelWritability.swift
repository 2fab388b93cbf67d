import NIOCore

/// Lets a COPY wait until the connection's channel takes more bytes before it hands the next
/// piece to postgres-nio. postgres-nio 1.33 parks a COPY write that finds the channel full in its
/// state machine, and when the server's ErrorResponse arrives meanwhile — a replayed batch's
/// unique violation, a few rows into the COPY — it forgets that write: the write never returns
/// and the sink stops for good (seen in one replay of 1M events in six). A write started while the
/// channel is writable never waits inside the driver, so the driver reports the error instead.
///
/// The first handler in the connection's pipeline (trailwatch makes the channel and passes it to
/// postgres-nio); its state is touched on the channel's event loop only.
final class ChannelWritability: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    let channel: any Channel
    /// Tasks waiting for the channel to become writable (or to close).
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Returns once the channel is writable, or closed. On the channel's event loop, so that the
    /// caller's next write is checked in the same event-loop job.
    func waitUntilWritable() async {
        channel.eventLoop.preconditionInEventLoop()
        while channel.isActive && !channel.isWritable {
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeWaiters() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        resumeWaiters()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resumeWaiters()
    }

    private func resumeWaiters() {
        let resumed = waiters
        waiters = []
        for waiter in resumed { waiter.resume() }
    }
}
