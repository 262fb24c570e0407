// Package notify posts CloudWatch alarm changes to the group robots an
// on-call team reads: DingTalk custom robots, Feishu (Lark) custom bots and
// WeCom group robots, several at once.
//
// The alarm topic delivers each change to the notify queue; the notify
// function receives them in batches (Handle). A batch becomes one message
// per robot, in Chinese with the English alarm name: what happened
// (threshold, value, the ebpCodes of dead-lettered sign jobs), since when,
// the runbook section of docs/operations.md that answers it, and the
// commands to run first. An OK closes the incident. Each robot gets
// markdown in its own format, signed the way its vendor documents, within
// its size limit.
//
// Rate limits hold across invocations without any shared state: the event
// source runs at most MaxConcurrency invocations at once, and an
// invocation never starts two posts to one robot closer together than
// MaxConcurrency minutes divided by the robot's limit per minute, nor
// returns before that gap has passed after its last post. So a robot with
// a limit of 20 a minute gets at most 20 posts in any minute, retries
// included, and a burst of changes is merged into few messages.
//
// A robot that fails (an HTTP error, or an answer whose errcode or code is
// not 0) is tried again with backoff; what still fails is logged and
// counted (MetricFailed) and never holds up the other robots or the other
// subscribers of the alarm topic (the e-mail).
package notify
