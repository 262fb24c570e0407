// Package lambdatest runs Lambda functions in tests the way Lambda does.
// A function binary (the `bootstrap` built from its CodeUri in
// template.yaml) or an in-process handler calls lambda.Start, which polls
// the Lambda Runtime API of the emulator that internal/dev/awstest starts; the
// test invokes it through the Lambda Invoke API with the SDK's Lambda
// client, exactly as hsmbridge invokes the upload function.
//
//	env := awstest.New(t)
//	fn := lambdatest.StartBinary(t, env, "IngestFunction")
//	res, err := fn.Invoke(ctx, payload) // res.Payload, res.FunctionError
//
// The function gets the template's timeout (as its deadline), memory size
// and environment (Globals merged, references resolved to the test's
// tables and queues), Lambda's own variables, and the AWS variables that
// point the SDK at the emulator; nothing else of the test's environment.
// Invocations of one function are served one at a time, like one sandbox.
// When the process exits during an invocation, the invocation fails with
// Runtime.ExitError and the process is started again.
//
// The emulator's own SQS event source mapping never invokes; for a
// function with an SQS event, EnableEventSources starts a poller that does
// what Lambda's mapping does, including ReportBatchItemFailures.
package lambdatest
