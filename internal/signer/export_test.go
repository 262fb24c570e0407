package signer

// The fingerprint's work factor protects markers on a real machine; the
// tests build hundreds of guards and only need it to be PBKDF2.
func init() { pinHashIterations = 1000 }
