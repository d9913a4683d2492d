package envelope

// Version is the envelope format this package reads and writes: 1.0, told
// apart by the envelope's first byte (SPEC.md §2). A later format will have
// another first byte, which this package refuses with
// ErrUnsupportedVersion.
const Version = 1

// DefaultMaxSize is the largest envelope accepted when no MaxSize is set.
const DefaultMaxSize = 256 << 10

// Algorithm names an algorithm as SPEC.md does, and as key ids are derived
// with (SPEC.md §6). The set is closed: the header carries each as a code,
// and a code outside its table is ErrMalformed.
type Algorithm string

// The algorithms of envelope 1.0. SPEC.md §4 defines each exactly.
const (
	HS256      Algorithm = "HS256"               // HMAC-SHA-256 with a per-peer key
	HOTP       Algorithm = "HOTP"                // RFC 4226 HOTP (HMAC-SHA-1), counter = envelope counter
	Ed25519    Algorithm = "Ed25519"             // RFC 8032 pure Ed25519
	ES256      Algorithm = "ES256"               // ECDSA P-256 SHA-256, r||s
	PS256      Algorithm = "PS256"               // RSA-PSS SHA-256, 32-byte salt
	A256GCM    Algorithm = "A256GCM"             // AES-256-GCM content encryption
	HPKEX25519 Algorithm = "HPKE-X25519"         // HPKE DHKEM(X25519) HKDF-SHA256 AES-256-GCM key wrap
	HPKEXWing  Algorithm = "HPKE-MLKEM768X25519" // HPKE MLKEM768-X25519 (X-Wing) HKDF-SHA256 AES-256-GCM key wrap
	RSAOAEP256 Algorithm = "RSA-OAEP-256"        // RSAES-OAEP SHA-256 key wrap
)

// codeTable gives the algorithms of one header slot their codes (SPEC.md
// §3.1); code 0 and every code past the table name no algorithm.
type codeTable [4]Algorithm

// The code tables of the header's signature and wrapped-key slots.
var (
	signatureCodes = codeTable{1: Ed25519, 2: ES256, 3: PS256}
	wrapCodes      = codeTable{1: HPKEX25519, 2: HPKEXWing, 3: RSAOAEP256}
)

// code is a's code in t, or 0 when t has no such algorithm.
func (t *codeTable) code(a Algorithm) byte {
	for c, alg := range t {
		if c > 0 && alg == a {
			return byte(c)
		}
	}
	return 0
}

// algorithm is the algorithm of code c in t, or "" for a code that names
// none.
func (t *codeTable) algorithm(c byte) Algorithm {
	if c > 0 && int(c) < len(t) {
		return t[c]
	}
	return ""
}

// Kind is the kind of a message. Kinds combine with | where a set is meant
// (see [Expect]); a single kind is also its code in the header.
type Kind uint8

// The message kinds.
const (
	Request Kind = 1 << iota
	Reply
	Event
	ErrorReply
)

var kindNames = [...]struct {
	k    Kind
	name string
}{{Request, "req"}, {Reply, "rep"}, {Event, "evt"}, {ErrorReply, "err"}}

// valid reports whether k is exactly one kind.
func (k Kind) valid() bool { return k.name() != "" }

func (k Kind) name() string {
	for _, n := range kindNames {
		if n.k == k {
			return n.name
		}
	}
	return ""
}

// String returns the short name of a single kind ("req", "rep", "evt",
// "err").
func (k Kind) String() string {
	if s := k.name(); s != "" {
		return s
	}
	return "kind?"
}

// Protection is a set of protections applied to (or required of) a message.
// Its bits are the header's protection byte.
type Protection uint8

// The protections, named "enc", "hmac", "hotp" and "sig".
const (
	Encryption Protection = 1 << iota
	HMAC
	HOTPCode
	Signature
)

// allProtections are the bits the header's protection byte may carry.
const allProtections = Encryption | HMAC | HOTPCode | Signature

var protectionNames = [...]struct {
	p    Protection
	name string
}{{Encryption, "enc"}, {HMAC, "hmac"}, {HOTPCode, "hotp"}, {Signature, "sig"}}

// String lists the protections by name, separated by "+".
func (p Protection) String() string {
	s := ""
	for _, n := range protectionNames {
		if p&n.p != 0 {
			if s != "" {
				s += "+"
			}
			s += n.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}
