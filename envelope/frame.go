package envelope

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// An envelope is four members, each after its length as 4 bytes
// big-endian, behind the version byte (SPEC.md §2):
//
//	0x01 || u32 len(H) || H || u32 len(P) || P || u32 len(M) || M || u32 len(S) || S
//
// H is the header, P the payload (or its ciphertext), M the HMAC tag and S
// the signature; M and S are empty when absent.

// versionByte begins every envelope of this format; 0x02 to 0x1F are kept
// for later formats (ErrUnsupportedVersion), every other byte is not an
// envelope (ErrMalformed).
const (
	versionByte   = Version
	lastReserved  = 0x1f
	lengthSize    = 4
	frameOverhead = 1 + 4*lengthSize
)

// frame is an envelope cut into its members, which point into the bytes it
// was read from.
type frame struct {
	data       []byte // the whole envelope
	header     []byte // H
	payload    []byte // P
	mac, sig   []byte // M and S, empty when absent
	payloadEnd int    // the end of P in data: the signing input's extent
}

// readFrame checks the version byte and the lengths of data (SPEC.md §2;
// Open's step 2) and cuts it into members.
func readFrame(data []byte) (frame, error) {
	switch {
	case len(data) == 0:
		return frame{}, errorf(ErrMalformed, "empty")
	case data[0] == versionByte:
	case data[0] > versionByte && data[0] <= lastReserved:
		return frame{}, ErrUnsupportedVersion
	default:
		return frame{}, errorf(ErrMalformed, "not an envelope")
	}
	f := frame{data: data}
	s := cryptobyte.String(data[1:])
	if !readMember(&s, &f.header) || !readMember(&s, &f.payload) {
		return frame{}, errorf(ErrMalformed, "member runs past the end")
	}
	f.payloadEnd = len(data) - len(s)
	if !readMember(&s, &f.mac) || !readMember(&s, &f.sig) {
		return frame{}, errorf(ErrMalformed, "member runs past the end")
	}
	if !s.Empty() {
		return frame{}, errorf(ErrMalformed, "trailing data")
	}
	// An empty header passes: step 3 finds its first field missing.
	return f, nil
}

// readMember reads a member after its 4-byte length (cryptobyte reads
// lengths of up to 3 bytes only).
func readMember(s *cryptobyte.String, out *[]byte) bool {
	var n uint32
	return s.ReadUint32(&n) && s.ReadBytes(out, int(n))
}

// checkMembers checks that the tags and the payload have the sizes the
// header h gives them (SPEC.md §3.3; Open's step 3).
func (f *frame) checkMembers(h *header) error {
	macSize := 0
	if h.prot&HMAC != 0 {
		macSize = sha256.Size
	}
	if len(f.mac) != macSize {
		return errorf(ErrMalformed, "HMAC tag of 32 bytes when declared, none otherwise")
	}
	if !signatureSizeFits(h.sigAlg, len(f.sig)) {
		return errorf(ErrMalformed, "signature of the size its algorithm gives, none otherwise")
	}
	if h.prot&Encryption != 0 && len(f.payload) < aesgcm.Overhead {
		return errorf(ErrMalformed, "ciphertext shorter than its nonce and tag")
	}
	return nil
}

// signatureSizeFits reports whether n bytes may be a signature by alg, ""
// meaning none.
func signatureSizeFits(alg Algorithm, n int) bool {
	switch alg {
	case "":
		return n == 0
	case Ed25519, ES256:
		return n == 64
	case PS256:
		return n >= minRSASize && n <= maxRSASize
	}
	return false
}

// associatedData is what the AEAD authenticates beside the payload: the
// envelope up to the end of the header (SPEC.md §4.6).
func (f *frame) associatedData() []byte { return f.data[:1+lengthSize+len(f.header)] }

// signingInputPrefix and authPrefix begin the signing input and the
// authenticated block (SPEC.md §4.1).
const (
	signingInputPrefix = "mqttsec.v1."
	authPrefix         = "mqttsec.v1.digest."
)

// signingInputStart is signingInputPrefix as bytes, made once: converted
// for each call to the hash's Write, it would take an allocation per
// message (TestAllocations).
var signingInputStart = []byte(signingInputPrefix)

// digest is SHA-256 of the signing input: the prefix and the envelope up
// to the end of the payload (SPEC.md §4.1). It identifies the message, and
// a reply carries its request's.
func (f *frame) digest() [32]byte { return digestOf(f.data[:f.payloadEnd]) }

func digestOf(framed []byte) [32]byte {
	st, _ := digestPool.Get().(*digestState)
	if st == nil {
		st = &digestState{h: sha256.New()}
	}
	st.h.Reset()
	st.h.Write(signingInputStart)
	st.h.Write(framed)
	d := [32]byte(st.h.Sum(st.sum[:0]))
	digestPool.Put(st)
	return d
}

// digestState is a SHA-256 and room for its output, reused through
// digestPool: a fresh SHA-256 state costs Seal and Open one allocation each
// (4 instead of 3 for a 256-byte HMAC or PSK message, BenchmarkEnvelope;
// the time is within the noise).
type digestState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

var digestPool sync.Pool

// authBlock is what every MAC and signature covers (SPEC.md §4.1):
// "mqttsec.v1.digest." || D, 50 bytes.
type authBlock [len(authPrefix) + sha256.Size]byte

func authBlockOf(digest [32]byte) authBlock {
	var a authBlock
	copy(a[:], authPrefix)
	copy(a[len(authPrefix):], digest[:])
	return a
}

// frameWriter writes an envelope into one buffer of its final size, member
// by member.
type frameWriter struct {
	b []byte
}

// header starts the envelope with the version byte and the header.
func (w *frameWriter) header(h []byte) {
	w.b = append(w.b, versionByte)
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(h)))
	w.b = append(w.b, h...)
}

// payloadLength writes the payload's length; the payload follows.
func (w *frameWriter) payloadLength(n int) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
}

// tags ends the envelope with the HMAC tag and the signature.
func (w *frameWriter) tags(mac, sig []byte) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(mac)))
	w.b = append(w.b, mac...)
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(sig)))
	w.b = append(w.b, sig...)
}
