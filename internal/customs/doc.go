// Package customs holds the wire format that ceb179 speaks with China
// Customs under announcements No.165 and No.179: the openReq that customs
// sends to platDataOpen, the immediate acknowledgement, the payExInfoStr
// document uploaded to realTimeDataUpload, its canonical JSON, the sign
// source, and the field rules of the payment data.
//
// Everything here is exact to the byte. The head and lists JSON texts are
// built once (MarshalHead, MarshalLists) and the same bytes are used both in
// the sign source (Unsigned.SignSource) and in the uploaded document
// (Unsigned.PayExInfoStr). A received document (ReadPayExInfoStr) keeps the
// raw bytes of those two values, so that its sign source can be rebuilt
// without re-serialising anything.
//
// The canonical JSON form is compact, keeps the key order of the
// specification, writes totalAmount as the exact decimal text it was given,
// and escapes only what JSON requires: the double quote, the backslash and
// the control characters below U+0020. It does not escape <, >, &, /,
// non-ASCII characters, or U+2028 and U+2029 (which encoding/json would
// escape). Text that is not valid UTF-8 cannot be written faithfully, so it
// is an error rather than being replaced with U+FFFD.
//
// No function in this package logs or prints payment data, and no error
// message repeats an input value.
package customs
