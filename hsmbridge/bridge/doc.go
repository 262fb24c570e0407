// Package bridge is the hsmbridge daemon: it long-polls the sign queue,
// keeps the jobs in an earliest-deadline-first schedule, has the signers of
// each ebpCode sign them, and hands the signatures to the upload function.
//
// A job is a sign-queue message. It stays in memory from the moment it is
// received until the upload function gives a final answer (then the
// message is deleted) or the bridge gives it back (then the message becomes
// visible again after its visibility timeout). While it waits or signs its
// visibility is extended, so no other consumer takes it. A crash therefore
// loses nothing: the messages come back on their own.
//
// Scheduling: jobs that can still make their deadline are served earliest
// deadline first; a job whose deadline is closer than the signer's expected
// sign-and-upload time is hopeless and waits in a second queue that is
// served only when no feasible job waits. Hopeless jobs are late but never
// dropped. The number of jobs in memory is bounded: when the backlog is
// full the bridge stops receiving.
package bridge
