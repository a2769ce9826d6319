//go:build darwin && cgo && amesh_secureenclave

package keystore

/*
#cgo LDFLAGS: -framework Security -framework CoreFoundation

#include <stdint.h>
#include <stdlib.h>
#include <CoreFoundation/CoreFoundation.h>
#include <Security/Security.h>

// Every amesh_se_* function that can fail returns 0 or a Security status
// code. When the failure came as a CFError, its description is returned in
// *desc, allocated with malloc for the caller to free. Each function releases
// everything it created or was handed ownership of, on every path.

static char *amesh_se_cstring(CFStringRef s) {
	CFIndex n = CFStringGetMaximumSizeForEncoding(CFStringGetLength(s), kCFStringEncodingUTF8) + 1;
	char *buf = malloc((size_t)n);
	if (buf != NULL && !CFStringGetCString(s, buf, n, kCFStringEncodingUTF8)) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

// amesh_se_cferror takes ownership of err.
static long amesh_se_cferror(CFErrorRef err, char **desc) {
	long code;
	CFStringRef s;

	if (err == NULL) {
		return errSecInternalComponent;
	}
	code = (long)CFErrorGetCode(err);
	s = CFErrorCopyDescription(err);
	if (s != NULL) {
		*desc = amesh_se_cstring(s);
		CFRelease(s);
	}
	CFRelease(err);
	return code != 0 ? code : errSecInternalComponent;
}

// amesh_se_copy copies data into out when it fits in cap bytes and always
// reports its length in *n, so that the caller can tell it did not fit. It
// takes ownership of data.
static void amesh_se_copy(CFDataRef data, uint8_t *out, size_t cap, size_t *n) {
	CFIndex len = CFDataGetLength(data);

	*n = (size_t)len;
	if (len >= 0 && (size_t)len <= cap) {
		CFDataGetBytes(data, CFRangeMake(0, len), out);
	}
	CFRelease(data);
}

static CFMutableDictionaryRef amesh_se_dict(void) {
	return CFDictionaryCreateMutable(kCFAllocatorDefault, 0,
		&kCFTypeDictionaryKeyCallBacks, &kCFTypeDictionaryValueCallBacks);
}

// amesh_se_query matches the private key kept under tag. Secure Enclave keys
// live in the data protection keychain, which SecItem calls on macOS reach
// only when asked to.
static CFMutableDictionaryRef amesh_se_query(CFDataRef tag) {
	CFMutableDictionaryRef q = amesh_se_dict();

	if (q != NULL) {
		CFDictionarySetValue(q, kSecClass, kSecClassKey);
		CFDictionarySetValue(q, kSecAttrKeyClass, kSecAttrKeyClassPrivate);
		CFDictionarySetValue(q, kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom);
		CFDictionarySetValue(q, kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
		CFDictionarySetValue(q, kSecAttrApplicationTag, tag);
		CFDictionarySetValue(q, kSecUseDataProtectionKeychain, kCFBooleanTrue);
	}
	return q;
}

static long amesh_se_create(const void *tag, size_t tagLen, SecKeyRef *out, char **desc) {
	long rc = 0;
	int bits = 256;
	CFErrorRef err = NULL;
	CFDataRef tagData = CFDataCreate(kCFAllocatorDefault, (const UInt8 *)tag, (CFIndex)tagLen);
	CFNumberRef size = CFNumberCreate(kCFAllocatorDefault, kCFNumberIntType, &bits);
	CFMutableDictionaryRef priv = amesh_se_dict();
	CFMutableDictionaryRef attrs = amesh_se_dict();
	SecAccessControlRef access = NULL;

	*out = NULL;
	if (tagData == NULL || size == NULL || priv == NULL || attrs == NULL) {
		rc = errSecAllocate;
		goto done;
	}
	// Usable for signing while the Mac is unlocked, never synced or
	// restored onto another device (a Secure Enclave key could not work
	// there anyway).
	access = SecAccessControlCreateWithFlags(kCFAllocatorDefault,
		kSecAttrAccessibleWhenUnlockedThisDeviceOnly, kSecAccessControlPrivateKeyUsage, &err);
	if (access == NULL) {
		rc = amesh_se_cferror(err, desc);
		goto done;
	}
	CFDictionarySetValue(priv, kSecAttrIsPermanent, kCFBooleanTrue);
	CFDictionarySetValue(priv, kSecAttrApplicationTag, tagData);
	CFDictionarySetValue(priv, kSecAttrAccessControl, access);
	CFDictionarySetValue(attrs, kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom);
	CFDictionarySetValue(attrs, kSecAttrKeySizeInBits, size);
	CFDictionarySetValue(attrs, kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
	CFDictionarySetValue(attrs, kSecUseDataProtectionKeychain, kCFBooleanTrue);
	CFDictionarySetValue(attrs, kSecPrivateKeyAttrs, priv);
	*out = SecKeyCreateRandomKey(attrs, &err);
	if (*out == NULL) {
		rc = amesh_se_cferror(err, desc);
	}
done:
	if (access != NULL) CFRelease(access);
	if (attrs != NULL) CFRelease(attrs);
	if (priv != NULL) CFRelease(priv);
	if (size != NULL) CFRelease(size);
	if (tagData != NULL) CFRelease(tagData);
	return rc;
}

static long amesh_se_load(const void *tag, size_t tagLen, SecKeyRef *out) {
	long rc = 0;
	CFTypeRef ref = NULL;
	CFDataRef tagData = CFDataCreate(kCFAllocatorDefault, (const UInt8 *)tag, (CFIndex)tagLen);
	CFMutableDictionaryRef q = tagData != NULL ? amesh_se_query(tagData) : NULL;

	*out = NULL;
	if (q == NULL) {
		rc = errSecAllocate;
		goto done;
	}
	CFDictionarySetValue(q, kSecReturnRef, kCFBooleanTrue);
	CFDictionarySetValue(q, kSecMatchLimit, kSecMatchLimitOne);
	rc = SecItemCopyMatching(q, &ref);
	if (rc == errSecSuccess) {
		if (ref != NULL && CFGetTypeID(ref) == SecKeyGetTypeID()) {
			*out = (SecKeyRef)ref;
			ref = NULL; // the caller owns it now
		} else {
			rc = errSecInternalComponent;
		}
	}
done:
	if (ref != NULL) CFRelease(ref);
	if (q != NULL) CFRelease(q);
	if (tagData != NULL) CFRelease(tagData);
	return rc;
}

static long amesh_se_delete(const void *tag, size_t tagLen) {
	long rc = errSecAllocate;
	CFDataRef tagData = CFDataCreate(kCFAllocatorDefault, (const UInt8 *)tag, (CFIndex)tagLen);
	CFMutableDictionaryRef q = tagData != NULL ? amesh_se_query(tagData) : NULL;

	if (q != NULL) {
		rc = SecItemDelete(q);
		CFRelease(q);
	}
	if (tagData != NULL) CFRelease(tagData);
	return rc;
}

// amesh_se_public exports the public half of key as 04 || X || Y.
static long amesh_se_public(SecKeyRef key, uint8_t *out, size_t cap, size_t *n, char **desc) {
	CFErrorRef err = NULL;
	CFDataRef data;
	SecKeyRef pub = SecKeyCopyPublicKey(key);

	*n = 0;
	if (pub == NULL) {
		return errSecInternalComponent;
	}
	data = SecKeyCopyExternalRepresentation(pub, &err);
	CFRelease(pub);
	if (data == NULL) {
		return amesh_se_cferror(err, desc);
	}
	amesh_se_copy(data, out, cap, n);
	return 0;
}

// amesh_se_sign signs a SHA-256 digest; the signature is X9.62 DER.
static long amesh_se_sign(SecKeyRef key, const void *digest, size_t len, uint8_t *out, size_t cap, size_t *n, char **desc) {
	CFErrorRef err = NULL;
	CFDataRef sig;
	CFDataRef d = CFDataCreate(kCFAllocatorDefault, (const UInt8 *)digest, (CFIndex)len);

	*n = 0;
	if (d == NULL) {
		return errSecAllocate;
	}
	sig = SecKeyCreateSignature(key, kSecKeyAlgorithmECDSASignatureDigestX962SHA256, d, &err);
	CFRelease(d);
	if (sig == NULL) {
		return amesh_se_cferror(err, desc);
	}
	amesh_se_copy(sig, out, cap, n);
	return 0;
}

static void amesh_se_release(SecKeyRef key) {
	if (key != NULL) CFRelease(key);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

const secureEnclaveAvailable = true

// secureEnclave is enclaveOps on Security.framework.
type secureEnclave struct{}

// seKey holds a retained SecKeyRef.
type seKey struct{ ref C.SecKeyRef }

// seError turns a status from the C helpers into an error, and frees the
// description they may have allocated.
func seError(call string, rc C.long, desc *C.char) error {
	var text string
	if desc != nil {
		text = C.GoString(desc)
		C.free(unsafe.Pointer(desc))
	}
	if rc == 0 {
		return nil
	}
	return &enclaveStatusError{call: call, code: int64(rc), desc: text}
}

func (secureEnclave) create(tag string) (enclaveKey, []byte, error) {
	t := []byte(tag)
	var ref C.SecKeyRef
	var desc *C.char
	rc := C.amesh_se_create(unsafe.Pointer(&t[0]), C.size_t(len(t)), &ref, &desc)
	if err := seError("SecKeyCreateRandomKey", rc, desc); err != nil {
		return nil, nil, err
	}
	k := &seKey{ref}
	pub, err := k.public()
	if err != nil {
		k.close()
		// The key is permanent already: do not leave it behind.
		return nil, nil, errors.Join(err, secureEnclave{}.remove(tag))
	}
	return k, pub, nil
}

func (secureEnclave) load(tag string) (enclaveKey, []byte, error) {
	t := []byte(tag)
	var ref C.SecKeyRef
	rc := C.amesh_se_load(unsafe.Pointer(&t[0]), C.size_t(len(t)), &ref)
	if rc == errSecItemNotFound {
		return nil, nil, errEnclaveKeyNotFound
	}
	if err := seError("SecItemCopyMatching", rc, nil); err != nil {
		return nil, nil, err
	}
	k := &seKey{ref}
	pub, err := k.public()
	if err != nil {
		k.close()
		return nil, nil, err
	}
	return k, pub, nil
}

func (secureEnclave) remove(tag string) error {
	t := []byte(tag)
	rc := C.amesh_se_delete(unsafe.Pointer(&t[0]), C.size_t(len(t)))
	if rc == errSecItemNotFound {
		return nil
	}
	return seError("SecItemDelete", rc, nil)
}

func (k *seKey) public() ([]byte, error) {
	var buf [2 * 65]byte
	var n C.size_t
	var desc *C.char
	rc := C.amesh_se_public(k.ref, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &desc)
	if err := seError("SecKeyCopyExternalRepresentation", rc, desc); err != nil {
		return nil, err
	}
	if int(n) > len(buf) {
		return nil, fmt.Errorf("the Secure Enclave's public key is %d bytes, want 65", int(n))
	}
	return append([]byte(nil), buf[:n]...), nil
}

func (k *seKey) signDigest(d []byte) ([]byte, error) {
	// A DER P-256 signature has at most 72 bytes.
	var buf [128]byte
	var n C.size_t
	var desc *C.char
	rc := C.amesh_se_sign(k.ref, unsafe.Pointer(&d[0]), C.size_t(len(d)), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &desc)
	if err := seError("SecKeyCreateSignature", rc, desc); err != nil {
		return nil, err
	}
	if int(n) > len(buf) {
		return nil, fmt.Errorf("the Secure Enclave's signature is %d bytes, more than a P-256 signature can have", int(n))
	}
	return append([]byte(nil), buf[:n]...), nil
}

func (k *seKey) close() { C.amesh_se_release(k.ref) }

func createSecureEnclave(opts Options) (Store, error) {
	return createEnclave(opts, secureEnclave{}, macKeychain{})
}

func openSecureEnclave(opts Options) (Store, error) {
	return openEnclave(opts, secureEnclave{}, macKeychain{})
}

func removeSecureEnclave(opts Options) error {
	return removeEnclave(opts, secureEnclave{}, macKeychain{})
}
