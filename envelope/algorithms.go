package envelope

// The envelope format versions this package reads and writes. All carry
// the same header value, protections and checks; they differ in how the
// members and the header are written.
const (
	// Version1 is the text envelope: a JSON template whose members are
	// base64url (SPEC.md §2).
	Version1 = 1
	// Version2 is the binary envelope: the same members as bytes, each
	// after its length (SPEC.md §13). It is smaller, and neither side
	// base64url-codes the payload.
	Version2 = 2
	// Version3 is the compact envelope: version 2's frame around a header
	// written as bytes instead of JSON (SPEC.md §14). It is the smallest
	// and the quickest to read, and a receiver needs no JSON parser.
	Version3 = 3
	// Version is the version Seal writes when Params.Version is zero and
	// the message is not a reply: the compact form. Set Params.Version to
	// Version1 or Version2 for a receiver that reads only those.
	Version = Version3
)

// DefaultMaxSize is the largest envelope accepted when no MaxSize is set.
const DefaultMaxSize = 256 << 10

// Algorithm names an algorithm as it appears in the envelope header. The set
// is closed: Open refuses any other value with ErrPolicy.
type Algorithm string

// The algorithms of envelope version 1. SPEC.md defines each exactly.
const (
	HS256      Algorithm = "HS256"               // HMAC-SHA-256 with a per-peer key
	HOTP       Algorithm = "HOTP"                // RFC 4226 HOTP (HMAC-SHA-1), counter = envelope counter
	Ed25519    Algorithm = "Ed25519"             // RFC 8032 pure Ed25519
	ES256      Algorithm = "ES256"               // ECDSA P-256 SHA-256, r||s
	PS256      Algorithm = "PS256"               // RSA-PSS SHA-256, 32-byte salt
	RS256      Algorithm = "RS256"               // RSA PKCS #1 v1.5 SHA-256 (legacy, verify only by policy)
	A256GCM    Algorithm = "A256GCM"             // AES-256-GCM content encryption
	HPKEX25519 Algorithm = "HPKE-X25519"         // HPKE DHKEM(X25519) HKDF-SHA256 AES-256-GCM key wrap
	HPKEXWing  Algorithm = "HPKE-MLKEM768X25519" // HPKE MLKEM768-X25519 HKDF-SHA256 AES-256-GCM key wrap
	RSAOAEP256 Algorithm = "RSA-OAEP-256"        // RSAES-OAEP SHA-256 key wrap
)

func signatureAlgorithm(a Algorithm) bool {
	switch a {
	case Ed25519, ES256, PS256, RS256:
		return true
	}
	return false
}

func wrapAlgorithm(a Algorithm) bool {
	switch a {
	case HPKEX25519, HPKEXWing, RSAOAEP256:
		return true
	}
	return false
}

// Kind is the kind of a message. Kinds combine with | where a set is meant
// (see [Expect]).
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
	wire string
}{{Request, "req"}, {Reply, "rep"}, {Event, "evt"}, {ErrorReply, "err"}}

func (k Kind) wire() string {
	for _, n := range kindNames {
		if n.k == k {
			return n.wire
		}
	}
	return ""
}

func parseKind(s string) (Kind, bool) {
	for _, n := range kindNames {
		if n.wire == s {
			return n.k, true
		}
	}
	return 0, false
}

// String returns the wire name of a single kind ("req", "rep", "evt", "err").
func (k Kind) String() string {
	if s := k.wire(); s != "" {
		return s
	}
	return "kind?"
}

// Protection is a set of protections applied to (or required of) a message.
type Protection uint8

// The protections. Their wire names, in the order the header lists them, are
// "enc", "hmac", "hotp", "sig".
const (
	Encryption Protection = 1 << iota
	HMAC
	HOTPCode
	Signature
)

var protectionNames = [...]struct {
	p    Protection
	wire string
}{{Encryption, "enc"}, {HMAC, "hmac"}, {HOTPCode, "hotp"}, {Signature, "sig"}}

// String lists the protections by wire name, separated by "+".
func (p Protection) String() string {
	s := ""
	for _, n := range protectionNames {
		if p&n.p != 0 {
			if s != "" {
				s += "+"
			}
			s += n.wire
		}
	}
	if s == "" {
		return "none"
	}
	return s
}
