// Package lambdatest runs Lambda functions in tests the way Lambda does:
// a function binary (a `bootstrap` built from functions/<name>) or an
// in-process handler calls lambda.Start, which polls the Lambda Runtime API
// of the emulator that internal/awstest starts; invocations go through the
// Lambda Invoke API with the SDK's Lambda client, exactly as hsmbridge
// invokes the upload function.
package lambdatest
