// Package provision enrols servers that nobody can type a code into:
// unattended provisioning through amesh-relay with a bootstrap token.
//
// The controller issues a token (Issue): signed by its device key, it names
// the controller's public key and friendly name, the relay, a one-time ID,
// an expiry of at most 24 hours and a random secret. The token travels to
// the target by whatever already configures the target (an environment
// variable set by a deployment system, a secrets manager); its text form,
// "amesh-bt1." and base64url, fits an environment variable.
//
// The target (Deliver) trusts the controller from the token alone, with
// role controller, and delivers its own identity to the controller through
// the relay: public key, friendly name and a signature by its device key
// over a domain-separated transcript that includes the token, sealed with a
// key derived from the token's secret. The relay spends the token's
// one-time ID (once across all its instances) and keeps the sealed delivery
// until the token expires; it can neither read nor forge it.
//
// The controller (Collect), online then or later, collects the deliveries
// of the tokens it issued, opens and verifies them, and hands each target to
// its caller to record with role target. It learns a target only through
// such an authenticated delivery.
//
// The package writes no files: the caller persists tokens it issued (their
// Encode form), records peers from the callbacks and keeps what Collect
// returns. Errors match the Err values with errors.Is. docs/PROVISIONING.md
// specifies the formats and the threat model, including what a stolen
// token can and cannot do.
package provision

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/amesh-go/amesh/relay/client"
	"github.com/amesh-go/amesh/relay/pairing"
	"github.com/amesh-go/amesh/relay/wire"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// Errors, for errors.Is.
var (
	// ErrMalformed: the token (or a delivery) does not parse: truncated,
	// mistyped, of another version, or not a token at all.
	ErrMalformed = errors.New("provision: malformed bootstrap token")
	// ErrTampered: a signature or seal does not verify: the token was
	// altered after it was issued, or a delivery was altered or forged.
	ErrTampered = errors.New("provision: signature does not verify: the bootstrap token or delivery was altered")
	// ErrExpired: the token's lifetime is over.
	ErrExpired = errors.New("provision: bootstrap token expired")
	// ErrUsed: the token's one-time ID was spent already (on the relay, by
	// this or another device), or a second delivery arrived for it.
	ErrUsed = errors.New("provision: bootstrap token already used")
	// ErrForeign: the token was not issued by the expected controller: on
	// the controller, by this device; on a target, by the controller it
	// was told to expect.
	ErrForeign = errors.New("provision: bootstrap token issued by another controller")
	// ErrRelay: the relay cannot be reached, refused the request or is
	// unavailable.
	ErrRelay = errors.New("provision: relay error")
)

// Limits.
const (
	// MaxTTL is the longest token lifetime.
	MaxTTL = 24 * time.Hour
	// DefaultTTL is the lifetime of a token when IssueOptions.TTL is zero.
	DefaultTTL = time.Hour
	// MinTTL is the shortest token lifetime.
	MinTTL = time.Minute
	// MaxRelayURL bounds the relay URL carried in a token, in bytes.
	MaxRelayURL = 512
	// MaxTokenLen bounds the text form of a token.
	MaxTokenLen = 2048
)

// Prefix starts the text form of a version 1 token.
const Prefix = "amesh-bt1."

// EnvToken is the environment variable that carries a token to a target.
const EnvToken = "AMESH_BOOTSTRAP_TOKEN"

const (
	tokenVersion = 1
	idLen        = wire.TokenIDLen
	secretLen    = 32
	// version, flags, issued, expires, ID, secret, controller key
	fixedLen = 1 + 1 + 8 + 8 + idLen + secretLen + protocol.PublicKeySize
)

// Domain-separation labels: each hash or key derivation starts with its
// own label (and a zero byte where hashed), so that nothing computed here
// passes for another value, a pairing value ("amesh pairing v1 …") or a
// request signature (canonical strings start with "AMv").
const (
	labelToken    = "amesh provision v1 token"
	labelIdentity = "amesh provision v1 target identity"
	labelMailbox  = "amesh provision v1 mailbox key"
	labelSeal     = "amesh provision v1 seal key"
	labelAAD      = "amesh provision v1 delivery"
)

// Token is a bootstrap token. It holds a secret: print it only with Encode,
// on purpose. Its String, Format and LogValue methods leave the secret out,
// so a Token handed to fmt or slog by mistake shows only its ID.
type Token struct {
	id             [idLen]byte
	issued         time.Time
	expires        time.Time
	controller     *protocol.PublicKey
	controllerName string
	targetName     string
	relayURL       string
	secret         [secretLen]byte
	body           []byte // the signed bytes
	sig            [protocol.SignatureSize]byte
}

// IssueOptions configure Issue.
type IssueOptions struct {
	// RelayURL is the relay the target delivers through (required).
	RelayURL string
	// TTL is the token's lifetime: DefaultTTL when zero, between MinTTL
	// and MaxTTL. The relay keeps a delivery until the token expires.
	TTL time.Duration
	// ControllerName is this controller's friendly name, which the target
	// records it under. It is sanitised (pairing.SanitizeName).
	ControllerName string
	// TargetName is the name the controller gives the target: the target
	// uses it unless it is given its own, and the controller records the
	// target under it. Optional; sanitised.
	TargetName string
	// Now supplies the issue time (nil: time.Now).
	Now func() time.Time
	// Rand supplies the ID and secret (nil: crypto/rand).
	Rand io.Reader
}

// Issue creates a token signed by the controller's device key.
func Issue(signer protocol.Signer, opts IssueOptions) (*Token, error) {
	if signer == nil {
		return nil, errors.New("provision: issue: no signer")
	}
	key, err := protocol.ParsePublicKey(signer.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("provision: issue: device key: %w", err)
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return nil, fmt.Errorf("provision: issue: lifetime %v outside %v to %v", ttl, MinTTL, MaxTTL)
	}
	relayURL := strings.TrimSpace(opts.RelayURL)
	if err := checkRelayURL(relayURL); err != nil {
		return nil, fmt.Errorf("provision: issue: %w", err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	t := &Token{
		controller:     key,
		controllerName: pairing.SanitizeName(opts.ControllerName),
		relayURL:       relayURL,
	}
	if strings.TrimSpace(opts.TargetName) != "" {
		t.targetName = pairing.SanitizeName(opts.TargetName)
	}
	t.issued = now().Truncate(time.Second)
	t.expires = t.issued.Add(ttl.Truncate(time.Second))
	if _, err := io.ReadFull(rnd, t.id[:]); err != nil {
		return nil, fmt.Errorf("provision: issue: random ID: %w", err)
	}
	if _, err := io.ReadFull(rnd, t.secret[:]); err != nil {
		return nil, fmt.Errorf("provision: issue: random secret: %w", err)
	}
	t.body = t.marshalBody()
	sig, err := signDigest(signer, key, t.digest())
	if err != nil {
		return nil, fmt.Errorf("provision: issue: %w", err)
	}
	copy(t.sig[:], sig)
	return t, nil
}

// signDigest signs with a device key, normalises to low-S and checks the
// result, so that a faulty signer (hardware, driver) fails here rather than
// at the peer.
func signDigest(s protocol.Signer, pub *protocol.PublicKey, digest []byte) ([]byte, error) {
	sig, err := s.SignDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if len(sig) != protocol.SignatureSize {
		return nil, fmt.Errorf("signer returned %d bytes, want %d", len(sig), protocol.SignatureSize)
	}
	sig = append([]byte(nil), sig...)
	if err := protocol.NormalizeLowS(sig); err != nil {
		return nil, err
	}
	if err := pub.VerifyDigest(digest, sig); err != nil {
		return nil, fmt.Errorf("device key produced an invalid signature: %w", err)
	}
	return sig, nil
}

func checkRelayURL(u string) error {
	if u == "" {
		return errors.New("no relay URL")
	}
	if len(u) > MaxRelayURL {
		return fmt.Errorf("relay URL longer than %d bytes", MaxRelayURL)
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] > '~' {
			return errors.New("relay URL contains spaces, controls or non-ASCII bytes")
		}
	}
	if _, err := client.NormalizeURL(u); err != nil {
		return err
	}
	return nil
}

// canonicalName reports whether a name from a token is as Issue writes it:
// empty, or already sanitised.
func canonicalName(s string) bool {
	return s == "" || (utf8.ValidString(s) && pairing.SanitizeName(s) == s)
}

func (t *Token) marshalBody() []byte {
	b := make([]byte, 0, fixedLen+2+len(t.relayURL)+2+len(t.controllerName)+len(t.targetName))
	b = append(b, tokenVersion, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(t.issued.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.expires.Unix()))
	b = append(b, t.id[:]...)
	b = append(b, t.secret[:]...)
	b = append(b, t.controller.Bytes()...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.relayURL)))
	b = append(b, t.relayURL...)
	b = append(b, byte(len(t.controllerName)))
	b = append(b, t.controllerName...)
	b = append(b, byte(len(t.targetName)))
	return append(b, t.targetName...)
}

// digest is what the controller signs: the label and every byte of the
// body, the secret included (a digest does not reveal it).
func (t *Token) digest() []byte {
	h := sha256.New()
	h.Write([]byte(labelToken))
	h.Write([]byte{0})
	h.Write(t.body)
	return h.Sum(nil)
}

// Encode returns the token's text form, Prefix and the unpadded base64url of
// its bytes. It contains the secret.
func (t *Token) Encode() string {
	raw := append(append([]byte(nil), t.body...), t.sig[:]...)
	return Prefix + base64.RawURLEncoding.EncodeToString(raw)
}

// Parse decodes a token's text form (surrounding white space is ignored)
// and checks its structure and its signature by the controller key it
// carries. It does not look at the clock: Check does.
func Parse(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrMalformed, MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		if strings.HasPrefix(s, "amesh-bt") {
			return nil, fmt.Errorf("%w: unsupported version (this amesh reads %q tokens)", ErrMalformed, Prefix)
		}
		return nil, fmt.Errorf("%w: it does not start with %q", ErrMalformed, Prefix)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url (was it cut or wrapped?)", ErrMalformed)
	}
	t, err := parseRaw(raw)
	if err != nil {
		return nil, err
	}
	if err := t.controller.VerifyDigest(t.digest(), t.sig[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	return t, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseRaw decodes the bytes of a token, strictly: every length exact, no
// byte left over, every field canonical.
func parseRaw(raw []byte) (*Token, error) {
	if len(raw) < fixedLen+2+1+1+protocol.SignatureSize {
		return nil, malformed("%d bytes is too short", len(raw))
	}
	if raw[0] != tokenVersion {
		return nil, malformed("unsupported version %d", raw[0])
	}
	if raw[1] != 0 {
		return nil, malformed("unknown flags 0x%02x", raw[1])
	}
	body, sig := raw[:len(raw)-protocol.SignatureSize], raw[len(raw)-protocol.SignatureSize:]
	t := &Token{body: append([]byte(nil), body...)}
	copy(t.sig[:], sig)
	issued, expires := binary.BigEndian.Uint64(body[2:]), binary.BigEndian.Uint64(body[10:])
	const maxUnix = 1 << 40 // far beyond any real date; keeps time arithmetic exact
	if issued == 0 || issued >= maxUnix || expires >= maxUnix || expires <= issued {
		return nil, malformed("issue and expiry times out of range")
	}
	if time.Duration(expires-issued)*time.Second > MaxTTL {
		return nil, malformed("lifetime over %v", MaxTTL)
	}
	t.issued, t.expires = time.Unix(int64(issued), 0), time.Unix(int64(expires), 0)
	p := body[18:]
	copy(t.id[:], p)
	p = p[idLen:]
	copy(t.secret[:], p)
	p = p[secretLen:]
	key, err := protocol.ParsePublicKey(p[:protocol.PublicKeySize])
	if err != nil {
		return nil, malformed("controller key: %v", err)
	}
	t.controller = key
	p = p[protocol.PublicKeySize:]
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if n > len(p) {
		return nil, malformed("relay URL runs past the end")
	}
	t.relayURL, p = string(p[:n]), p[n:]
	if err := checkRelayURL(t.relayURL); err != nil {
		return nil, malformed("%v", err)
	}
	var names [2]string
	for i := range names {
		if len(p) < 1 || int(p[0]) > len(p)-1 {
			return nil, malformed("name runs past the end")
		}
		n := int(p[0])
		names[i], p = string(p[1:1+n]), p[1+n:]
		if n > pairing.MaxNameBytes || !canonicalName(names[i]) {
			return nil, malformed("name is not a sanitised name")
		}
	}
	if len(p) != 0 {
		return nil, malformed("%d bytes after the names", len(p))
	}
	t.controllerName, t.targetName = names[0], names[1]
	if t.controllerName == "" {
		return nil, malformed("no controller name")
	}
	return t, nil
}

// Check reports whether the token can still be used at now: ErrExpired
// once its lifetime is over.
func (t *Token) Check(now time.Time) error {
	if !now.Before(t.expires) {
		return fmt.Errorf("%w at %s", ErrExpired, t.expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// ID returns the token's one-time ID as text ("bt_" and base64url), for
// records and messages. It is not secret.
func (t *Token) ID() string { return "bt_" + base64.RawURLEncoding.EncodeToString(t.id[:]) }

// IssuedAt returns when the token was issued (whole seconds).
func (t *Token) IssuedAt() time.Time { return t.issued }

// Expires returns when the token stops being usable (whole seconds).
func (t *Token) Expires() time.Time { return t.expires }

// RelayURL returns the relay the token names.
func (t *Token) RelayURL() string { return t.relayURL }

// TargetName returns the name the controller gave the target, or "".
func (t *Token) TargetName() string { return t.targetName }

// ControllerKey returns the issuing controller's device key.
func (t *Token) ControllerKey() *protocol.PublicKey { return t.controller }

// Controller returns the issuing controller as the target records it.
func (t *Token) Controller() Controller {
	return Controller{
		PublicKey: t.controller,
		DeviceID:  t.controller.DeviceID(),
		Name:      t.controllerName,
		Role:      pairing.RoleController,
		TokenID:   t.ID(),
	}
}

// IssuedBy reports whether key issued the token.
func (t *Token) IssuedBy(key *protocol.PublicKey) bool {
	return key != nil && t.controller.Equal(key)
}

// String describes the token without its secret.
func (t Token) String() string {
	if t.controller == nil {
		return "bootstrap token (empty)"
	}
	return fmt.Sprintf("bootstrap token %s from %s (%s), expires %s", t.ID(), t.controller.DeviceID(),
		t.controllerName, t.expires.UTC().Format(time.RFC3339))
}

// Format prints String for every verb, so that %v, %+v, %#v and %x never
// reveal the secret, whether given a Token or a *Token.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue keeps the secret out of structured logs.
func (t *Token) LogValue() slog.Value {
	if t == nil || t.controller == nil {
		return slog.StringValue("bootstrap token (empty)")
	}
	return slog.GroupValue(slog.String("id", t.ID()), slog.String("controller", t.controller.DeviceID()),
		slog.Time("expires", t.expires))
}

// keys derives the mailbox key (given to the relay to collect), the
// mailbox address (given to the relay to deliver) and the seal key (never
// given to anyone) from the secret.
func (t *Token) keys() (mailboxKey, addr [wire.MailboxLen]byte, sealKey []byte) {
	mk, err := hkdf.Key(sha256.New, t.secret[:], t.id[:], labelMailbox, wire.MailboxLen)
	if err != nil {
		panic(err) // only for lengths beyond 255 hash blocks
	}
	copy(mailboxKey[:], mk)
	addr = wire.MailboxAddress(mk)
	sealKey, err = hkdf.Key(sha256.New, t.secret[:], t.id[:], labelSeal, 32)
	if err != nil {
		panic(err)
	}
	return mailboxKey, addr, sealKey
}
