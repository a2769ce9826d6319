// Package strictjson decodes JSON documents that must be exactly one value
// of a known shape: key files, sealed allow lists, plugin configurations.
// An unknown field or anything after the value is an error, so that a typo
// or an appended second document is refused rather than ignored.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData reports data after the JSON value.
var ErrTrailingData = errors.New("data after the JSON object")

// Decode decodes data into v, refusing unknown fields and trailing data.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}
