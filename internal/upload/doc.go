// Package upload is the logic of the upload function, which hsmbridge
// invokes twice per sign job (see docs/architecture.md):
//
//   - op "source" returns the exact sign source of an assembled session;
//   - op "upload" takes the signature, checks it, and posts the signed data
//     to customs.
//
// An upload is sent only when three things hold: the digest the bridge
// signed is the digest of the stored bytes, and those bytes still hash to
// it; the certificate named by certNo is registered for the session's
// ebpCode; and the signature verifies against it. The document is built
// from the stored head and lists bytes, never re-serialised.
//
// Only one invocation posts a session at a time: it first claims the
// session with a conditional write (ASSEMBLED → SIGNED with a lease that
// ends with the invocation), so concurrent duplicate invocations post at
// most once, and a crashed invocation's session can be claimed again when
// its lease has ended. A session already in a final state is answered from
// the table without posting again.
//
// Outcomes of a post, and what follows:
//
//   - customs 10000: ACCEPTED.
//   - customs 20000 (or any other code) with a message, in an HTTP 2xx
//     answer or a 4xx one carrying customs' JSON answer: its verdict,
//     REJECTED, the message kept; never retried.
//   - customs 入库失败 (the sessionID is already stored) after an earlier
//     attempt of ours that may have left the session stored (one that may
//     have reached customs without a verdict coming back, or an
//     acceptance): the session is ACCEPTED with the reason "duplicate after
//     an unanswered attempt" and the attempt is recorded as DUPLICATE.
//     Without such an attempt it is customs' own storage failure (or
//     another's copy): nothing of ours is stored, and it is retried like a
//     post without a verdict, never read as an acceptance.
//   - no verdict: a timeout, a connection lost after the request was
//     written, any HTTP error status without customs' verdict (5xx, and
//     4xx such as the 403 or 404 of customs' gateway during maintenance),
//     an unreadable answer (UNCERTAIN: customs may have stored it); or a
//     request that certainly never reached customs (name not resolved,
//     connection refused, TLS handshake failed, the connection failed
//     before the request was written: NOT_DELIVERED). Both are retried:
//     before the deadline the invocation retries with exponential backoff
//     and full jitter while the deadline and its own time allow. After the
//     deadline it posts at most once per invocation and no more often than
//     Policy.SlowInterval, answering RETRY so the bridge delivers the job
//     again after the queue's visibility timeout (late data is better than
//     none); the interval grows with the lateness. The session becomes
//     FAILED Policy.GiveUpAfter past the deadline (or at once when no later
//     post would fit in that window). The job's last delivery
//     (Invocation.LastDelivery) does not end it: the job dead-letters and
//     the settler sends it again. Only an UNCERTAIN attempt can make a
//     later 入库失败 ours.
//   - customs' TLS certificate not trusted: repeating the same request
//     cannot help; the session becomes FAILED at once.
//
// Every post is recorded as an ATTEMPT item (time, HTTP status, customs'
// answer, latency, digests of what was signed and sent, certNo and
// signValue) and kept as long as the payment data. The payload itself is
// never logged.
package upload
