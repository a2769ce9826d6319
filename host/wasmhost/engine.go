// Package wasmhost runs amesh.wasm, the amesh verification core compiled to
// WebAssembly, inside Go programs with github.com/tetratelabs/wazero.
//
// An Engine compiles the module once (the embedded copy by default, with a
// compilation cache on disk) and implements the guest's imports: ECDSA
// verification with Go's crypto, nonces through a protocol.NonceStore,
// signing with a protocol.Signer whose private key never enters guest
// memory, the clock, and logging through log/slog. An Instance is one
// instantiated module, for one goroutine at a time; a Verifier keeps a
// pre-warmed pool of them behind the same Verify method as the native
// protocol.Verifier. docs/ABI.md specifies the guest's ABI.
package wasmhost

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// ImportModule is the module name of the guest's imports.
const ImportModule = "amesh"

// Options configure an Engine. The zero value is the usual choice.
type Options struct {
	// Module is the wasm to run; nil means the embedded amesh.wasm.
	Module []byte
	// CacheDir is the directory of wazero's compilation cache. Empty means
	// amesh/wazero under os.UserCacheDir; if that cannot be used, the
	// cache is kept in memory only.
	CacheDir string
	// NoCache disables the compilation cache on disk.
	NoCache bool
	// Logger receives the guest's log messages and its standard error;
	// nil means slog.Default().
	Logger *slog.Logger
	// MemoryLimitPages bounds each instance's memory, in 64 KiB pages;
	// zero means 16384 (1 GiB).
	MemoryLimitPages uint32
}

// Engine holds a compiled amesh.wasm and the host functions it imports. It
// is safe for concurrent use; create instances from it.
type Engine struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	cache    wazero.CompilationCache
	logger   *slog.Logger
	// CompileTime is how long compiling (or loading from the cache) took.
	CompileTime time.Duration
}

// DefaultCacheDir returns the default compilation cache directory.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("wasmhost: user cache directory: %w", err)
	}
	return filepath.Join(dir, "amesh", "wazero"), nil
}

// NewEngine compiles the module and prepares its imports. Compiling the
// ~4 MB module takes over a second without the cache and a fraction of that
// with it: create one Engine per process (see Shared) and many instances.
func NewEngine(ctx context.Context, opts Options) (*Engine, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	module := opts.Module
	if module == nil {
		module = embedded
	}
	cfg := wazero.NewRuntimeConfig()
	limit := opts.MemoryLimitPages
	if limit == 0 {
		limit = 16384
	}
	cfg = cfg.WithMemoryLimitPages(limit)
	var cache wazero.CompilationCache
	if !opts.NoCache {
		dir := opts.CacheDir
		var err error
		if dir == "" {
			dir, err = DefaultCacheDir()
		}
		if err == nil {
			cache, err = wazero.NewCompilationCacheWithDir(dir)
		}
		if err != nil {
			// Compiling without a disk cache is slower, never wrong.
			logger.Warn("amesh: wasm compilation cache on disk unavailable, compiling in memory", "err", err)
			cache = wazero.NewCompilationCache()
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	e := &Engine{rt: wazero.NewRuntimeWithConfig(ctx, cfg), cache: cache, logger: logger}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		e.Close(ctx)
		return nil, fmt.Errorf("wasmhost: WASI: %w", err)
	}
	if err := e.defineImports(ctx); err != nil {
		e.Close(ctx)
		return nil, err
	}
	start := time.Now()
	compiled, err := e.rt.CompileModule(ctx, module)
	if err != nil {
		e.Close(ctx)
		return nil, fmt.Errorf("wasmhost: compile amesh.wasm: %w", err)
	}
	e.CompileTime = time.Since(start)
	e.compiled = compiled
	return e, nil
}

var shared struct {
	once sync.Once
	e    *Engine
	err  error
}

// Shared returns the process-wide Engine with default options, compiling
// the embedded module on first use. It is never closed.
func Shared() (*Engine, error) {
	shared.once.Do(func() {
		shared.e, shared.err = NewEngine(context.Background(), Options{})
	})
	return shared.e, shared.err
}

// Close releases the runtime, its instances and the compiled module.
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	if err != nil {
		return fmt.Errorf("wasmhost: close engine: %w", err)
	}
	return nil
}

// callState is what the host functions need from the Instance that is
// calling: it travels in the context of each call into the guest.
type callState struct {
	inst     *Instance
	nonces   protocol.NonceStore
	signer   protocol.Signer
	nonceErr error // the last nonce store failure, for the result's Err
	signErr  error // the last signer failure
}

type stateKey struct{}

func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(stateKey{}).(*callState)
	return s
}

// read returns a view of guest memory at the i32 pointer in a stack slot,
// or false if the range is outside. wazero leaves the upper 32 bits of an
// i32 slot undefined, so they are dropped first.
func read(mod api.Module, slot uint64, n uint32) ([]byte, bool) {
	return mod.Memory().Read(api.DecodeU32(slot), n)
}

// defineImports instantiates the host module "amesh". The functions take
// their arguments from the stack (api.GoModuleFunc) to avoid reflection on
// every call.
func (e *Engine) defineImports(ctx context.Context) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b := e.rt.NewHostModuleBuilder(ImportModule)
	def := func(name string, fn api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(name)
	}
	def("now_ms", func(ctx context.Context, _ api.Module, stack []uint64) {
		stack[0] = uint64(time.Now().UnixMilli())
	}, nil, []api.ValueType{i64})
	def("ecdsa_verify", e.ecdsaVerify, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32})
	def("nonce_record", e.nonceRecord, []api.ValueType{i32, i32, i64, i64}, []api.ValueType{i32})
	def("sign_digest", e.signDigest, []api.ValueType{i32, i32, i32}, []api.ValueType{i32})
	def("log", e.log, []api.ValueType{i32, i32, i32}, nil)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasmhost: host module: %w", err)
	}
	return nil
}

// ecdsaVerify implements the ecdsa_verify import with crypto/ecdsa.
func (e *Engine) ecdsaVerify(ctx context.Context, mod api.Module, stack []uint64) {
	point, ok1 := read(mod, stack[0], protocol.UncompressedKeySize)
	var digest []byte
	ok2 := true
	if api.DecodeU32(stack[3]) == 0 {
		// abi.CryptoHostMessage: the guest left the hashing to us.
		var msg []byte
		if msg, ok2 = read(mod, stack[1], api.DecodeU32(stack[2])); ok2 {
			d := sha256.Sum256(msg)
			digest = d[:]
		}
	} else {
		digest, ok2 = read(mod, stack[3], 32)
	}
	sig, ok3 := read(mod, stack[4], protocol.SignatureSize)
	if !ok1 || !ok2 || !ok3 {
		stack[0] = abi.SigInvalid // fail closed on a confused guest
		return
	}
	key := keyFromPoint(stateOf(ctx), point)
	if key == nil {
		stack[0] = abi.SigInvalid
		return
	}
	if key.VerifyDigest(digest, sig) != nil {
		stack[0] = abi.SigInvalid
		return
	}
	stack[0] = abi.SigValid
}

// keyFromPoint finds the allow-list key of an uncompressed point, whose
// crypto/ecdsa form is already parsed, or parses the point.
func keyFromPoint(s *callState, point []byte) *protocol.PublicKey {
	if len(point) != protocol.UncompressedKeySize || point[0] != 4 {
		return nil
	}
	var c [protocol.PublicKeySize]byte
	c[0] = 2 | point[64]&1
	copy(c[1:], point[1:33])
	if s != nil && s.inst != nil {
		if d := s.inst.list[c]; d != nil && string(d.Key.Uncompressed()) == string(point) {
			return d.Key
		}
	}
	k, err := protocol.ParseUncompressedPublicKey(point)
	if err != nil {
		return nil
	}
	return k
}

// nonceRecord implements the nonce_record import with the instance's store.
func (e *Engine) nonceRecord(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key, ok := read(mod, stack[0], api.DecodeU32(stack[1]))
	if !ok || s == nil || s.nonces == nil {
		if s != nil {
			s.nonceErr = errors.New("wasmhost: no nonce store, or the guest passed a bad key")
		}
		stack[0] = abi.NonceFailure
		return
	}
	now := time.UnixMilli(int64(stack[2]))
	ttl := time.Duration(int64(stack[3])) * time.Millisecond
	fresh, err := s.nonces.Record(ctx, string(key), now, ttl)
	switch {
	case err != nil:
		s.nonceErr = err
		stack[0] = abi.NonceFailure
	case fresh:
		stack[0] = abi.NonceFresh
	default:
		stack[0] = abi.NonceReplay
	}
}

// signDigest implements the sign_digest import. Only the digest goes to
// the signer and only the signature comes back into guest memory.
func (e *Engine) signDigest(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key, ok1 := read(mod, stack[0], protocol.PublicKeySize)
	digest, ok2 := read(mod, stack[1], 32)
	if !ok1 || !ok2 || s == nil {
		stack[0] = abi.SignFailed
		return
	}
	if s.signer == nil || string(s.signer.PublicKey()) != string(key) {
		stack[0] = abi.SignNoKey
		return
	}
	sig, err := s.signer.SignDigest(append([]byte(nil), digest...))
	if err == nil && len(sig) != protocol.SignatureSize {
		err = fmt.Errorf("signer returned %d bytes, want %d", len(sig), protocol.SignatureSize)
	}
	if err != nil {
		s.signErr = err
		stack[0] = abi.SignFailed
		return
	}
	if !mod.Memory().Write(api.DecodeU32(stack[2]), sig) {
		stack[0] = abi.SignFailed
		return
	}
	stack[0] = abi.SignOK
}

// log implements the log import.
func (e *Engine) log(ctx context.Context, mod api.Module, stack []uint64) {
	msg, ok := read(mod, stack[1], api.DecodeU32(stack[2]))
	if !ok {
		msg = []byte("(log message outside guest memory)")
	}
	e.logger.Log(ctx, slog.Level(api.DecodeI32(stack[0])), string(msg), "source", "amesh.wasm")
}

// stderrLog turns the guest's standard error (Go runtime messages) into
// log records.
type stderrLog struct{ logger *slog.Logger }

func (w stderrLog) Write(p []byte) (int, error) {
	w.logger.Warn("amesh.wasm stderr", "text", string(p))
	return len(p), nil
}

// moduleConfig is the configuration of every instance: a reactor
// (_initialize), the real clocks and crypto/rand (without them the guest's
// clock is fixed and its randomness predictable), stderr to the log.
func (e *Engine) moduleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStderr(stderrLog{e.logger})
}
