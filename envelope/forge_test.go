package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// The forge builds envelopes from the values of their fields, legal or
// not, and then computes over them what a genuine sender would: the content
// encryption, the digest, the HMAC tag, the HOTP code and the signature,
// with real keys. A test vector made with it is refused by the one rule it
// breaks, and by nothing before it: a reader that skipped the rule would
// accept it (or, where the rule guards the parsing itself, fail later in
// another class).

// headerField names a field of the header (SPEC.md §3), in header order.
type headerField int

const (
	fieldKind headerField = iota
	fieldProt
	fieldFrom
	fieldTo
	fieldTopic
	fieldReplyTo
	fieldCorr
	fieldRe
	fieldCtr
	fieldIat
	fieldExp
	fieldMac
	fieldHotp
	fieldSig
	fieldEnc
	headerFields
)

var headerFieldNames = [headerFields]string{
	"kind", "prot", "from", "to", "topic", "replyTo", "corr", "re",
	"ctr", "iat", "exp", "mac", "hotp", "sig", "enc",
}

func (f headerField) String() string { return headerFieldNames[f] }

// forgery describes one envelope to build.
type forgery struct {
	// version is the first byte when versionSet; else Version.
	version    byte
	versionSet bool
	// h holds the header's field values, any values; the keys below fill
	// in the protections they stand for, then editHeader runs.
	h header
	// raw, for a field, holds the bytes written instead of the field's
	// encoding of its value in h. A field with raw bytes is written even
	// when the protection byte does not declare it.
	raw [headerFields][]byte
	// tail is written after the header's last field.
	tail []byte
	// payload is the plaintext.
	payload []byte

	// The keys the forger applies; each sets its protection bit and key
	// id in h (before editHeader).
	mac        *HMACKey
	hotp       *HOTPKey // the code is the key's for h.ctr
	signer     Signer
	psk        *AEADKey
	recipients []Recipient // a fresh content key wrapped to each
	// cekSize, if set, is the size of that content key instead of
	// SPEC.md's 32 bytes; P is then AES-GCM under a key of that size
	// (AES-128-GCM for 16), in the same nonce || ct || tag layout.
	cekSize int

	// editHeader changes the header's values once the keys filled them
	// in: the tags still cover whatever it writes.
	editHeader func(h *header)
	// editH changes the header's bytes as written (of the values h): the
	// tags cover the change.
	editH func(h *header, b []byte) []byte
	// editPayload changes P (the ciphertext when encrypted) before the
	// digest: the tags cover the change, the AEAD does not.
	editPayload func(p []byte) []byte
	// editParts changes the members after the tags were computed: the
	// tags do not cover the change.
	editParts func(p *envelopeParts)
	// editBytes changes the finished envelope.
	editBytes func(b []byte) []byte
}

// envelopeParts are the first byte and the members of an envelope, as
// the other tests of this package cut them (splitParts).
type envelopeParts = splitParts

// signedPrefix is the envelope up to the end of P: what the digest covers
// after the "mqttsec.v1." prefix.
func (p *envelopeParts) signedPrefix() []byte {
	b := []byte{p.first}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.header)))
	b = append(b, p.header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.payload)))
	return append(b, p.payload...)
}

// digest computes, as SPEC.md §4.1 writes it, the digest D of the members
// and the authenticated block A = "mqttsec.v1.digest." || D.
func (p *envelopeParts) digest() (d [32]byte, a []byte) {
	d = sha256.Sum256(append([]byte("mqttsec.v1."), p.signedPrefix()...))
	return d, append([]byte("mqttsec.v1.digest."), d[:]...)
}

// forged is a built envelope.
type forged struct {
	bytes  []byte
	digest [32]byte // of the signing input as built
	h      header   // the header's values as written (where not raw)
	f      *forgery
	parts  envelopeParts // as sent
}

// build writes the envelope. It draws randomness (content keys, nonces,
// randomized signatures) from crypto/rand, which the generator makes
// deterministic.
func (f *forgery) build(t testing.TB) *forged {
	t.Helper()
	h := f.h
	h.to = slices.Clone(f.h.to)
	h.rcpt = slices.Clone(f.h.rcpt)
	var content forgeSealer
	if f.mac != nil {
		h.prot |= HMAC
		h.macKid = f.mac.KeyID()
	}
	if f.hotp != nil {
		h.prot |= HOTPCode
		h.hotpKid = f.hotp.KeyID()
		h.hotpCode = f.hotp.key.Code(h.ctr)
	}
	if f.signer != nil {
		h.prot |= Signature
		h.sigAlg, h.sigKid = f.signer.Algorithm(), f.signer.KeyID()
	}
	if f.psk != nil {
		h.prot |= Encryption
		h.pskKid = f.psk.KeyID()
		content = f.psk.key
	}
	if len(f.recipients) > 0 {
		h.prot |= Encryption
		size := contentKeySize
		if f.cekSize != 0 {
			size = f.cekSize
		}
		cek := make([]byte, size)
		rand.Read(cek)
		for _, r := range f.recipients {
			wk, err := r.Wrap(cek)
			if err != nil {
				t.Fatal(err)
			}
			h.rcpt = append(h.rcpt, wrappedKey{alg: r.Algorithm(), kid: r.KeyID(), wk: wk})
		}
		if size == contentKeySize {
			k, err := aesgcm.NewKey(cek)
			if err != nil {
				t.Fatal(err)
			}
			content = k
		} else {
			content = forgeGCM(t, cek)
		}
	}
	if f.editHeader != nil {
		f.editHeader(&h)
	}

	p := envelopeParts{first: Version, header: f.writeHeader(t, &h)}
	if f.versionSet {
		p.first = f.version
	}
	if f.editH != nil {
		p.header = f.editH(&h, p.header)
	}
	if content != nil {
		aad := p.signedPrefix()[:1+4+len(p.header)]
		var err error
		if p.payload, err = content.Seal(nil, f.payload, aad); err != nil {
			t.Fatal(err)
		}
	} else {
		p.payload = append([]byte{}, f.payload...)
	}
	if f.editPayload != nil {
		p.payload = f.editPayload(p.payload)
	}
	digest, auth := p.digest()
	if f.mac != nil {
		m := hmac.New(sha256.New, f.mac.secret)
		m.Write(auth)
		p.mac = m.Sum(nil)
	}
	if f.signer != nil {
		sig, err := f.signer.Sign(auth)
		if err != nil {
			t.Fatal(err)
		}
		p.sig = sig
	}
	if f.editParts != nil {
		f.editParts(&p)
	}
	b := p.join()
	if f.editBytes != nil {
		b = f.editBytes(b)
	}
	return &forged{bytes: b, digest: digest, h: h, f: f, parts: p}
}

// forgeSealer encrypts P: nonce || ct || tag, the nonce from crypto/rand.
type forgeSealer interface {
	Seal(dst, plaintext, aad []byte) ([]byte, error)
}

// forgeAnyGCM is AES-GCM under a key of any size AES takes, which
// aesgcm.Key (AES-256 only) refuses.
type forgeAnyGCM struct{ aead cipher.AEAD }

func forgeGCM(t testing.TB, key []byte) forgeAnyGCM {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		t.Fatal(err)
	}
	return forgeAnyGCM{aead: aead}
}

func (g forgeAnyGCM) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	return g.aead.Seal(dst, nil, plaintext, aad), nil
}

// writeHeader encodes h field by field, with the raw bytes of f where it
// has any, then f.tail. A header with neither (and no forged algorithm
// code) is the package's own encoding, appendHeader's, which the field
// writer must agree with.
func (f *forgery) writeHeader(t testing.TB, h *header) []byte {
	t.Helper()
	var b []byte
	plain := f.tail == nil
	for field := range headerFields {
		if f.raw[field] != nil {
			b = append(b, f.raw[field]...)
			plain = false
			continue
		}
		b = appendField(t, b, h, field)
	}
	b = append(b, f.tail...)
	if plain && !forgedCodes(h) {
		std := appendHeader(nil, h)
		if string(std) != string(b) {
			t.Fatalf("forge: the field writer and appendHeader differ:\n%x\n%x", b, std)
		}
		return std
	}
	return b
}

// appendField writes one field of h as SPEC.md §3 encodes it; an optional
// field is written only when the protection byte declares it.
func appendField(t testing.TB, b []byte, h *header, field headerField) []byte {
	t.Helper()
	appendStr8 := func(b []byte, s []byte) []byte {
		if len(s) > 0xff {
			t.Fatalf("forge: %d bytes in a str8 field %s: write it raw", len(s), field)
		}
		return append(append(b, byte(len(s))), s...)
	}
	appendStr16 := func(b []byte, s []byte) []byte {
		if len(s) > 0xffff {
			t.Fatalf("forge: %d bytes in a str16 field %s: write it raw", len(s), field)
		}
		return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
	}
	count := func(b []byte, n int) []byte {
		if n > 0xff {
			t.Fatalf("forge: a count of %d in field %s: write it raw", n, field)
		}
		return append(b, byte(n))
	}
	code := func(table *codeTable, alg Algorithm) byte {
		if c, ok := forgedCode(alg); ok {
			return c
		}
		c := table.code(alg)
		if c == 0 {
			t.Fatalf("forge: no code for algorithm %q in field %s: write it raw", alg, field)
		}
		return c
	}
	switch field {
	case fieldKind:
		return append(b, byte(h.kind))
	case fieldProt:
		return append(b, byte(h.prot))
	case fieldFrom:
		return appendStr8(b, []byte(h.from))
	case fieldTo:
		b = count(b, len(h.to))
		for _, to := range h.to {
			b = appendStr8(b, []byte(to))
		}
		return b
	case fieldTopic:
		return appendStr16(b, []byte(h.topic))
	case fieldReplyTo:
		return appendStr16(b, []byte(h.replyTo))
	case fieldCorr:
		return appendStr8(b, h.corr)
	case fieldRe:
		return appendStr8(b, h.re)
	case fieldCtr:
		return binary.BigEndian.AppendUint64(b, h.ctr)
	case fieldIat:
		return binary.BigEndian.AppendUint64(b, h.iat)
	case fieldExp:
		return binary.BigEndian.AppendUint64(b, h.exp)
	case fieldMac:
		if h.prot&HMAC != 0 {
			b = append(b, h.macKid[:]...)
		}
	case fieldHotp:
		if h.prot&HOTPCode != 0 {
			b = appendStr8(append(b, h.hotpKid[:]...), []byte(h.hotpCode))
		}
	case fieldSig:
		if h.prot&Signature != 0 {
			b = append(append(b, code(&signatureCodes, h.sigAlg)), h.sigKid[:]...)
		}
	case fieldEnc:
		if h.prot&Encryption != 0 {
			b = count(b, len(h.rcpt))
			if len(h.rcpt) == 0 {
				b = append(b, h.pskKid[:]...)
			}
			for _, w := range h.rcpt {
				b = append(append(b, code(&wrapCodes, w.alg)), w.kid[:]...)
				b = appendStr16(b, w.wk)
			}
		}
	}
	return b
}

// algCode stands, in a forged header, for the algorithm code c, which
// need not name an algorithm.
func algCode(c byte) Algorithm { return Algorithm(fmt.Sprintf("code %#02x", c)) }

func forgedCode(alg Algorithm) (byte, bool) {
	var c byte
	if _, err := fmt.Sscanf(string(alg), "code %v", &c); err != nil {
		return 0, false
	}
	return c, true
}

// Raw encodings, for the values a field's own encoding cannot carry.

// rawStr8 is a str8 field whose length byte is n, followed by s.
func rawStr8(n int, s string) []byte { return append([]byte{byte(n)}, s...) }

// rawStr16 is a str16 field whose length is n, followed by s.
func rawStr16(n int, s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(n)), s...)
}

// forgedCodes reports whether h names an algorithm by a forged code, which
// appendHeader cannot write.
func forgedCodes(h *header) bool {
	_, sig := forgedCode(h.sigAlg)
	for _, w := range h.rcpt {
		if _, ok := forgedCode(w.alg); ok {
			return true
		}
	}
	return sig && h.prot&Signature != 0
}

// fieldOffset is where field begins in the header of the values h, as the
// forge writes it without raw bytes.
func fieldOffset(t testing.TB, h *header, field headerField) int {
	var b []byte
	for f := range field {
		b = appendField(t, b, h, f)
	}
	return len(b)
}
