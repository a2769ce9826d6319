package protocol

import (
	"errors"

	"github.com/amesh-go/amesh/wasm/internal/errwrap"
)

// Code is a public error code: the value of the "error" member of the JSON
// body a verifier sends with a rejection. Every code maps to exactly one HTTP
// status; see Code.Status.
type Code string

// The public error codes of docs/PROTOCOL.md.
const (
	CodeMissingHeader      Code = "missing_header"
	CodeMalformedHeader    Code = "malformed_header"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeUnauthorized       Code = "unauthorized"
	CodeIntegrityFailure   Code = "allow_list_integrity_failure"
	CodePayloadTooLarge    Code = "payload_too_large"
	CodeUnavailable        Code = "service_unavailable"
)

// Status returns the HTTP status code that goes with c, or 200 for the empty
// code.
func (c Code) Status() int {
	switch c {
	case "":
		return 200
	case CodeMissingHeader, CodeMalformedHeader, CodeUnsupportedVersion:
		return 400
	case CodeUnauthorized:
		return 401
	case CodePayloadTooLarge:
		return 413
	case CodeIntegrityFailure:
		return 500
	case CodeUnavailable:
		return 503
	}
	return 500
}

// Body returns the JSON body that goes with c: {"error":"<code>"}.
func (c Code) Body() []byte {
	return []byte(`{"error":"` + string(c) + `"}`)
}

// Reason is the private reason for a decision. It is meant for the server's
// log; it is never sent to the client, so that every 401 looks the same.
type Reason string

// The private reasons a Verifier reports.
const (
	ReasonOK                 Reason = "ok"
	ReasonMissingHeader      Reason = "missing_header"
	ReasonMalformedHeader    Reason = "malformed_header"
	ReasonUnsupportedVersion Reason = "unsupported_version"
	ReasonVersionNotAllowed  Reason = "version_not_allowed"
	ReasonUnknownKey         Reason = "unknown_key"
	ReasonRoleRejected       Reason = "role_rejected"
	ReasonTimestampRange     Reason = "timestamp_out_of_range"
	ReasonWrongAudience      Reason = "wrong_audience"
	ReasonBadTarget          Reason = "bad_target"
	ReasonPayloadTooLarge    Reason = "payload_too_large"
	ReasonBadSignature       Reason = "bad_signature"
	ReasonReplay             Reason = "replay"
	ReasonNonceStore         Reason = "nonce_store_unavailable"
	ReasonIntegrity          Reason = "allow_list_integrity_failure"
)

// HeaderError is returned by the header parser. Its Code is one of
// CodeMissingHeader, CodeMalformedHeader or CodeUnsupportedVersion.
type HeaderError struct {
	Code   Code
	Detail string
}

func (e *HeaderError) Error() string {
	if e.Detail == "" {
		return "amesh: " + string(e.Code)
	}
	return "amesh: " + string(e.Code) + ": " + e.Detail
}

// Is reports whether target is a *HeaderError with the same code, so that
// errors.Is(err, ErrMalformedHeader) works whatever the detail.
func (e *HeaderError) Is(target error) bool {
	t, ok := target.(*HeaderError)
	return ok && t.Code == e.Code
}

// Sentinel header errors, for use with errors.Is.
var (
	ErrMissingHeader      = &HeaderError{Code: CodeMissingHeader}
	ErrMalformedHeader    = &HeaderError{Code: CodeMalformedHeader}
	ErrUnsupportedVersion = &HeaderError{Code: CodeUnsupportedVersion}
)

func malformed(detail string) error {
	return &HeaderError{Code: CodeMalformedHeader, Detail: detail}
}

// wrap is errwrap.Wrap: fmt.Errorf("prefix: %w", err) without fmt.
var wrap = errwrap.Wrap

// ErrNonceStoreFull is returned by a NonceStore that has no room for another
// nonce. Verifiers treat it like any store failure: they reject (fail closed).
var ErrNonceStoreFull = errors.New("amesh: nonce store full")

// ErrIntegrity marks an allow list whose integrity check failed. AllowList
// implementations wrap it; a Verifier answers 500 allow_list_integrity_failure
// for any lookup error.
var ErrIntegrity = errors.New("amesh: allow list integrity failure")
