package upload

import "github.com/ceb179/ceb179/internal/customs"

// customsForm is the request body posted for doc.
func customsForm(doc []byte) []byte { return customs.EncodeUploadForm(doc) }
