package adapters

import (
	"bytes"
	"encoding/json"
)

// MarshalBody encodes a vendor request body as the channels send it
// (Request.Body): JSON without Go's escaping of <, > and & (markdown
// quotes and links read as written; the SDKs' PostJSON does the same)
// and without the encoder's final newline.
func MarshalBody(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
