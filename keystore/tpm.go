package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/amesh-go/amesh/internal/atomicfile"
	"github.com/amesh-go/amesh/internal/strictjson"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// EnvTPMPIN supplies the TPM key's PIN to Open when Options.TPMPIN is
// empty, for services that cannot be asked.
const EnvTPMPIN = "AMESH_TPM_PIN"

// TPMKeyName is the file holding the TPM key blobs in the state directory.
// The blobs are useless without the TPM that made them.
const TPMKeyName = "key.tpm.json"

// The signing key: ECDSA P-256 with SHA-256, never leaving the TPM
// (fixedTPM), not subject to dictionary-attack lockout (noDA), usable with
// its auth value (the PIN, empty by default).
var tpmSignTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// The sealing secret: a sealed data object (keyedHash, no scheme) that only
// this TPM can unseal.
var tpmSealTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgKeyedHash,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:     true,
		FixedParent:  true,
		UserWithAuth: true,
		NoDA:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
		Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{}),
}

// The allow-list generation lives in an NV counter: the TPM only ever
// increments it, and a counter defined anew starts at the highest value any
// counter on this TPM ever had, so it cannot be rolled back by deleting and
// redefining it. Reading and incrementing need its (empty) auth value only.
var tpmCounterAttrs = tpm2.TPMANV{
	AuthWrite: true,
	AuthRead:  true,
	NoDA:      true,
	NT:        tpm2.TPMNTCounter,
}

// NV indices of the owner range that amesh picks from at random. One index
// per state directory, recorded in the key file.
const (
	tpmNVBase = 0x01800000
	tpmNVSpan = 0x00400000
)

// tpmKeyFile is the JSON file in the state directory.
type tpmKeyFile struct {
	Version     int    `json:"version"`
	PublicKey   string `json:"publicKey"`
	KeyPublic   string `json:"keyPublic"`
	KeyPrivate  string `json:"keyPrivate"`
	SealPublic  string `json:"sealPublic"`
	SealPrivate string `json:"sealPrivate"`
	NVIndex     uint32 `json:"nvIndex"`
	PIN         bool   `json:"pin"`
}

type tpmKey struct {
	file        tpmKeyFile
	pub         *protocol.PublicKey
	keyPublic   tpm2.TPM2BPublic
	keyPrivate  tpm2.TPM2BPrivate
	sealPublic  tpm2.TPM2BPublic
	sealPrivate tpm2.TPM2BPrivate
}

// parseTPMKeyFile validates the key file without a TPM. It never panics,
// whatever the input (see FuzzParseTPMKeyFile).
func parseTPMKeyFile(data []byte) (*tpmKey, error) {
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxKeyFileBytes)
	}
	var f tpmKeyFile
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, this build reads version 1", ErrCorrupt, f.Version)
	}
	if f.NVIndex < tpmNVBase || f.NVIndex >= tpmNVBase+tpmNVSpan {
		return nil, fmt.Errorf("%w: NV index %#x outside amesh's range", ErrCorrupt, f.NVIndex)
	}
	k := &tpmKey{file: f}
	var err error
	b64 := func(name, s string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		if b, err = base64.StdEncoding.Strict().DecodeString(s); err != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
		return b
	}
	pub := b64("publicKey", f.PublicKey)
	kpub, kpriv := b64("keyPublic", f.KeyPublic), b64("keyPrivate", f.KeyPrivate)
	spub, spriv := b64("sealPublic", f.SealPublic), b64("sealPrivate", f.SealPrivate)
	if err != nil {
		return nil, err
	}
	if k.pub, err = protocol.ParsePublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := unmarshalExact(kpub, &k.keyPublic); err != nil {
		return nil, fmt.Errorf("%w: keyPublic: %v", ErrCorrupt, err)
	}
	if err := unmarshalExact(kpriv, &k.keyPrivate); err != nil {
		return nil, fmt.Errorf("%w: keyPrivate: %v", ErrCorrupt, err)
	}
	if err := unmarshalExact(spub, &k.sealPublic); err != nil {
		return nil, fmt.Errorf("%w: sealPublic: %v", ErrCorrupt, err)
	}
	if err := unmarshalExact(spriv, &k.sealPrivate); err != nil {
		return nil, fmt.Errorf("%w: sealPrivate: %v", ErrCorrupt, err)
	}
	// The public blob decides which key the TPM loads; it must be the
	// one whose public key the identity advertises.
	got, err := tpmPublicKey(k.keyPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: keyPublic: %v", ErrCorrupt, err)
	}
	if !got.Equal(k.pub) {
		return nil, fmt.Errorf("%w: keyPublic does not hold publicKey", ErrCorrupt)
	}
	return k, nil
}

// unmarshalExact decodes a TPM2B and insists the whole input was used.
func unmarshalExact[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte, out P) (err error) {
	defer func() {
		// The TPM structure decoder is not written for hostile input;
		// a key file is only written by us, but a panic must not escape.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed TPM structure")
		}
	}()
	v, err := tpm2.Unmarshal[T, P](b)
	if err != nil {
		return err
	}
	if !bytes.Equal(tpm2.Marshal(*v), b) {
		return errors.New("trailing or non-canonical bytes")
	}
	*out = *v
	return nil
}

func tpmPublicKey(b tpm2.TPM2BPublic) (*protocol.PublicKey, error) {
	pub, err := b.Contents()
	if err != nil {
		return nil, err
	}
	if pub.Type != tpm2.TPMAlgECC {
		return nil, errors.New("not an ECC key")
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, err
	}
	if parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, errors.New("not a P-256 key")
	}
	pt, err := pub.Unique.ECC()
	if err != nil {
		return nil, err
	}
	if len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) == 0 || len(pt.Y.Buffer) > 32 {
		return nil, errors.New("bad point")
	}
	var c [protocol.PublicKeySize]byte
	c[0] = 2 | pt.Y.Buffer[len(pt.Y.Buffer)-1]&1
	copy(c[1+32-len(pt.X.Buffer):], pt.X.Buffer)
	return protocol.ParsePublicKey(c[:])
}

// tpmSession runs fn on a fresh connection with the storage root key (SRK)
// re-derived from the standard template: the TPM returns the same key for
// the same template and seed, so nothing needs to be persisted in the TPM.
// Every transient handle is flushed before it returns, on errors too.
func tpmSession(opts Options, fn func(t transport.TPM, srk *srkHandle) error) (err error) {
	t, err := openTPMTransport(opts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer func() { err = errors.Join(err, closeErr(t.Close())) }()
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t)
	if err != nil {
		return tpmErr("derive the storage root key", err, ownerOp)
	}
	defer flush(t, rsp.ObjectHandle, &err)
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return fmt.Errorf("keystore: storage root key: %w", err)
	}
	return fn(t, &srkHandle{handle: rsp.ObjectHandle, name: rsp.Name, public: *pub})
}

func closeErr(err error) error {
	if err != nil {
		return fmt.Errorf("keystore: close TPM connection: %w", err)
	}
	return nil
}

type srkHandle struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

// parent authorises use of the SRK with a salted session that encrypts the
// first command parameter, so that the PIN, the sealing secret and the key
// blobs do not cross the bus in the clear.
func (s *srkHandle) parent(dir tpm2.AuthOption) tpm2.AuthHandle {
	return tpm2.AuthHandle{
		Handle: s.handle,
		Name:   s.name,
		Auth:   tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(s.handle, s.public), dir),
	}
}

func (s *srkHandle) plainParent() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: s.handle, Name: s.name, Auth: tpm2.PasswordAuth(nil)}
}

func flush(t transport.TPM, h tpm2.TPMHandle, errp *error) {
	if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(t); err != nil {
		*errp = errors.Join(*errp, fmt.Errorf("keystore: flush TPM handle %#x: %w", uint32(h), err))
	}
}

type tpmOp int

const (
	ownerOp tpmOp = iota // owner-hierarchy authorisation
	keyOp                // the key's own authorisation (the PIN)
	loadOp               // loading our blobs
	otherOp
)

// tpmErr turns the TPM's answers for the known failures into errors that
// say what to do.
func tpmErr(what string, err error, op tpmOp) error {
	authFailed := errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail)
	switch {
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("keystore: %s: %w (%v): wait for the lockout to expire or clear it with `tpm2_dictionarylockout --clear-lockout`", what, ErrTPMLockout, err)
	case authFailed && op == ownerOp:
		return fmt.Errorf("keystore: %s: %w (%v): amesh needs an empty owner authorization; remove it with `tpm2_changeauth -c owner -p OLDPASSWORD` or use --backend encrypted-file", what, ErrTPMOwnerAuth, err)
	case authFailed && op == keyOp:
		return fmt.Errorf("keystore: %s: %w", what, ErrWrongPIN)
	case op == loadOp && (errors.Is(err, tpm2.TPMRCIntegrity) || errors.Is(err, tpm2.TPMRCSensitive) || errors.Is(err, tpm2.TPMRCHandle) || errors.Is(err, tpm2.TPMRCValue)):
		return fmt.Errorf("keystore: %s: %w (%v): the TPM was probably cleared (a firmware update can do that) and the key is gone; re-enrol with `%s` and pair again", what, ErrTPMKeyLost, err, ReenrolHint)
	}
	return fmt.Errorf("keystore: %s: %w", what, err)
}

// probeTPM checks that a TPM 2.0 answers, for Detect.
func probeTPM(opts Options) error {
	t, err := openTPMTransport(opts)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (add this user to the group that owns the device, usually tss)", err)
	}
	if err != nil {
		return err
	}
	defer t.Close()
	if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(t); err != nil {
		return fmt.Errorf("TPM at %s does not answer: %w", tpmDeviceName(opts), err)
	}
	return nil
}

type tpmStore struct {
	opts   Options
	key    *tpmKey
	pin    []byte
	secret []byte
	nv     tpm2.TPMHandle

	mu     sync.Mutex // one TPM conversation at a time per store
	closed bool
}

func createTPM(opts Options) (Store, error) {
	if err := ensureDir(opts.Dir); err != nil {
		return nil, err
	}
	path := keyPath(opts.Dir, TPMKeyName)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	var f tpmKeyFile
	var nv tpm2.TPMHandle
	err = tpmSession(opts, func(t transport.TPM, srk *srkHandle) error {
		keyRsp, err := tpm2.Create{
			ParentHandle: srk.parent(tpm2.AESEncryption(128, tpm2.EncryptIn)),
			InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				UserAuth: tpm2.TPM2BAuth{Buffer: opts.TPMPIN},
			}},
			InPublic: tpm2.New2B(tpmSignTemplate),
		}.Execute(t)
		if err != nil {
			return tpmErr("create the signing key", err, otherOp)
		}
		sealRsp, err := tpm2.Create{
			ParentHandle: srk.parent(tpm2.AESEncryption(128, tpm2.EncryptIn)),
			InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
			}},
			InPublic: tpm2.New2B(tpmSealTemplate),
		}.Execute(t)
		if err != nil {
			return tpmErr("seal the sealing secret", err, otherOp)
		}
		if nv, err = defineCounter(t); err != nil {
			return err
		}
		pub, err := tpmPublicKey(keyRsp.OutPublic)
		if err != nil {
			return fmt.Errorf("keystore: TPM returned an unusable public key: %w", err)
		}
		f = tpmKeyFile{
			Version:     1,
			PublicKey:   pub.String(),
			KeyPublic:   base64.StdEncoding.EncodeToString(tpm2.Marshal(keyRsp.OutPublic)),
			KeyPrivate:  base64.StdEncoding.EncodeToString(tpm2.Marshal(keyRsp.OutPrivate)),
			SealPublic:  base64.StdEncoding.EncodeToString(tpm2.Marshal(sealRsp.OutPublic)),
			SealPrivate: base64.StdEncoding.EncodeToString(tpm2.Marshal(sealRsp.OutPrivate)),
			NVIndex:     uint32(nv),
			PIN:         len(opts.TPMPIN) > 0,
		}
		return nil
	})
	undo := func() {
		if nv != 0 {
			tpmSession(opts, func(t transport.TPM, _ *srkHandle) error { return undefineCounter(t, nv) })
		}
	}
	if err != nil {
		undo()
		return nil, err
	}
	data, _ := json.MarshalIndent(f, "", "  ")
	if err := atomicfile.CreateFile(path, append(data, '\n'), 0o600); err != nil {
		undo()
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, path)
		}
		return nil, fmt.Errorf("keystore: write TPM key file: %w", err)
	}
	k, err := parseTPMKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keystore: re-read TPM key file: %w", err)
	}
	return &tpmStore{opts: opts, key: k, pin: clone(opts.TPMPIN), secret: secret, nv: nv}, nil
}

// defineCounter defines the generation counter at a random free index and
// increments it once, since a counter cannot be read before its first write.
func defineCounter(t transport.TPM) (tpm2.TPMHandle, error) {
	for range 16 {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return 0, fmt.Errorf("keystore: random NV index: %w", err)
		}
		idx := tpm2.TPMHandle(tpmNVBase + binary.BigEndian.Uint32(r[:])%tpmNVSpan)
		_, err := tpm2.NVDefineSpace{
			AuthHandle: tpm2.TPMRHOwner,
			PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
				NVIndex:    idx,
				NameAlg:    tpm2.TPMAlgSHA256,
				Attributes: tpmCounterAttrs,
				DataSize:   8,
			}),
		}.Execute(t)
		if errors.Is(err, tpm2.TPMRCNVDefined) {
			continue // another directory's counter, or someone else's index
		}
		if err != nil {
			return 0, tpmErr("define the allow-list counter", err, ownerOp)
		}
		if err := incrementCounter(t, idx); err != nil {
			return 0, errors.Join(err, undefineCounter(t, idx))
		}
		return idx, nil
	}
	return 0, errors.New("keystore: no free NV index found for the allow-list counter")
}

// counterName reads the index's public area, checks it is the counter we
// defined (not an index someone put in its place), and returns its name.
func counterName(t transport.TPM, idx tpm2.TPMHandle) (tpm2.TPM2BName, error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if err != nil {
		return tpm2.TPM2BName{}, tpmErr(fmt.Sprintf("read the allow-list counter (NV index %#x)", uint32(idx)), err, loadOp)
	}
	pub, err := rsp.NVPublic.Contents()
	if err != nil {
		return tpm2.TPM2BName{}, fmt.Errorf("keystore: allow-list counter: %w", err)
	}
	want := tpmCounterAttrs
	want.Written = pub.Attributes.Written
	if pub.Attributes != want || pub.DataSize != 8 || pub.NameAlg != tpm2.TPMAlgSHA256 || len(pub.AuthPolicy.Buffer) != 0 {
		return tpm2.TPM2BName{}, fmt.Errorf("%w: NV index %#x is not the allow-list counter amesh defined", ErrCorrupt, uint32(idx))
	}
	return rsp.NVName, nil
}

func nvAuth(idx tpm2.TPMHandle, name tpm2.TPM2BName) tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: idx, Name: name, Auth: tpm2.PasswordAuth(nil)}
}

func incrementCounter(t transport.TPM, idx tpm2.TPMHandle) error {
	name, err := counterName(t, idx)
	if err != nil {
		return err
	}
	if _, err := (tpm2.NVIncrement{AuthHandle: nvAuth(idx, name), NVIndex: tpm2.NamedHandle{Handle: idx, Name: name}}).Execute(t); err != nil {
		return tpmErr("increment the allow-list counter", err, otherOp)
	}
	return nil
}

func readCounter(t transport.TPM, idx tpm2.TPMHandle) (uint64, error) {
	name, err := counterName(t, idx)
	if err != nil {
		return 0, err
	}
	rsp, err := tpm2.NVRead{AuthHandle: nvAuth(idx, name), NVIndex: tpm2.NamedHandle{Handle: idx, Name: name}, Size: 8}.Execute(t)
	if err != nil {
		return 0, tpmErr("read the allow-list counter", err, otherOp)
	}
	if len(rsp.Data.Buffer) != 8 {
		return 0, fmt.Errorf("keystore: allow-list counter returned %d bytes", len(rsp.Data.Buffer))
	}
	return binary.BigEndian.Uint64(rsp.Data.Buffer), nil
}

func undefineCounter(t transport.TPM, idx tpm2.TPMHandle) error {
	rsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if err != nil {
		return nil // already gone
	}
	if _, err := (tpm2.NVUndefineSpace{AuthHandle: tpm2.TPMRHOwner, NVIndex: tpm2.NamedHandle{Handle: idx, Name: rsp.NVName}}).Execute(t); err != nil {
		return tpmErr("remove the allow-list counter", err, ownerOp)
	}
	return nil
}

func readTPMKey(dir string) (*tpmKey, error) {
	path := keyPath(dir, TPMKeyName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w: %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: read TPM key file: %w", err)
	}
	k, err := parseTPMKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return k, nil
}

func openTPM(opts Options) (Store, error) {
	k, err := readTPMKey(opts.Dir)
	if err != nil {
		return nil, err
	}
	if k.file.PIN && len(opts.TPMPIN) == 0 {
		opts.TPMPIN = []byte(os.Getenv(EnvTPMPIN))
	}
	if k.file.PIN && len(opts.TPMPIN) == 0 {
		return nil, fmt.Errorf("keystore: the TPM key in %s has a PIN and none was given (set %s)", opts.Dir, EnvTPMPIN)
	}
	s := &tpmStore{opts: opts, key: k, pin: clone(opts.TPMPIN), nv: tpm2.TPMHandle(k.file.NVIndex)}
	err = tpmSession(opts, func(t transport.TPM, srk *srkHandle) (err error) {
		// Loading proves the key still belongs to this TPM; the sealing
		// secret is unsealed once and kept for the life of the store.
		key, err := s.loadKey(t, srk)
		if err != nil {
			return err
		}
		if err := flushNow(t, key.Handle); err != nil {
			return err
		}
		sealed, err := tpm2.Load{ParentHandle: srk.plainParent(), InPrivate: k.sealPrivate, InPublic: k.sealPublic}.Execute(t)
		if err != nil {
			return tpmErr("load the sealing secret", err, loadOp)
		}
		defer flush(t, sealed.ObjectHandle, &err)
		rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{
			Handle: sealed.ObjectHandle,
			Name:   sealed.Name,
			Auth:   tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptOut)),
		}}.Execute(t)
		if err != nil {
			return tpmErr("unseal the sealing secret", err, otherOp)
		}
		if len(rsp.OutData.Buffer) != SecretSize {
			return fmt.Errorf("%w: sealing secret is %d bytes", ErrCorrupt, len(rsp.OutData.Buffer))
		}
		s.secret = clone(rsp.OutData.Buffer)
		_, err = readCounter(t, s.nv)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// loadKey loads the signing key under the SRK and returns its handle with
// the authorisation signing needs. The caller flushes it.
func (s *tpmStore) loadKey(t transport.TPM, srk *srkHandle) (tpm2.AuthHandle, error) {
	rsp, err := tpm2.Load{ParentHandle: srk.plainParent(), InPrivate: s.key.keyPrivate, InPublic: s.key.keyPublic}.Execute(t)
	if err != nil {
		return tpm2.AuthHandle{}, tpmErr("load the device key", err, loadOp)
	}
	auth := tpm2.PasswordAuth(nil)
	if len(s.pin) > 0 {
		auth = tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(s.pin), tpm2.Salted(srk.handle, srk.public))
	}
	return tpm2.AuthHandle{Handle: rsp.ObjectHandle, Name: rsp.Name, Auth: auth}, nil
}

func flushNow(t transport.TPM, h tpm2.TPMHandle) error {
	var err error
	flush(t, h, &err)
	return err
}

func removeTPM(opts Options) error {
	path := keyPath(opts.Dir, TPMKeyName)
	k, err := readTPMKey(opts.Dir)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		err = tpmSession(opts, func(t transport.TPM, _ *srkHandle) error {
			return undefineCounter(t, tpm2.TPMHandle(k.file.NVIndex))
		})
		if errors.Is(err, ErrTPMKeyLost) || errors.Is(err, ErrUnavailable) {
			err = nil // nothing left in the TPM to remove, or no TPM at all
		}
		if err != nil {
			return err
		}
	}
	// A corrupt file cannot name its counter; removing it is all we can do.
	return atomicfile.Remove(path)
}

func (s *tpmStore) PublicKey() []byte { return s.key.pub.Bytes() }
func (s *tpmStore) Backend() string   { return BackendTPM }

func (s *tpmStore) SignDigest(d []byte) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var sig []byte
	err := tpmSession(s.opts, func(t transport.TPM, srk *srkHandle) (err error) {
		key, err := s.loadKey(t, srk)
		if err != nil {
			return err
		}
		defer flush(t, key.Handle, &err)
		rsp, err := tpm2.Sign{
			KeyHandle: key,
			Digest:    tpm2.TPM2BDigest{Buffer: d},
			InScheme: tpm2.TPMTSigScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
			},
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		}.Execute(t)
		if err != nil {
			return tpmErr("sign", err, keyOp)
		}
		ecc, err := rsp.Signature.Signature.ECDSA()
		if err != nil {
			return fmt.Errorf("keystore: TPM signature: %w", err)
		}
		// The TPM returns r and s as big-endian integers of any length
		// and either half of the s range: pad and normalise to low-S.
		sig, err = protocol.RawSignature(ecc.SignatureR.Buffer, ecc.SignatureS.Buffer)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A wrong key or a corrupted answer must not leave this function.
	if err := s.key.pub.VerifyDigest(d, sig); err != nil {
		return nil, fmt.Errorf("keystore: the TPM's signature does not verify: %v", err)
	}
	return sig, nil
}

func (s *tpmStore) SealingSecret() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return clone(s.secret), nil
}

func (s *tpmStore) Generation() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	var g uint64
	err := s.counter(func(t transport.TPM) (err error) {
		g, err = readCounter(t, s.nv)
		return err
	})
	return g, err
}

// maxCounterStep bounds the increments one commit may make; a legitimate
// commit is one step ahead of the counter.
const maxCounterStep = 16

func (s *tpmStore) CommitGeneration(g uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.counter(func(t transport.TPM) error {
		cur, err := readCounter(t, s.nv)
		if err != nil {
			return err
		}
		if g <= cur {
			return nil
		}
		if g-cur > maxCounterStep {
			return fmt.Errorf("keystore: generation %d is more than %d ahead of the TPM counter (%d)", g, maxCounterStep, cur)
		}
		for ; cur < g; cur++ {
			if err := incrementCounter(t, s.nv); err != nil {
				return err
			}
		}
		return nil
	})
}

// counter runs fn on a connection without deriving the SRK: NV access
// needs none.
func (s *tpmStore) counter(fn func(t transport.TPM) error) (err error) {
	t, err := openTPMTransport(s.opts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer func() { err = errors.Join(err, closeErr(t.Close())) }()
	return fn(t)
}

func (s *tpmStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		wipe(s.secret)
		wipe(s.pin)
	}
	return nil
}
