package envelope

// The tests read and check headers as wire headers; the package does so in
// headerBlocks (see readHeaderBlock).

// readHeader parses the canonical header; ok is false for anything else.
func readHeader(b []byte) (*wireHeader, bool) {
	blk, ok := readHeaderBlock(b)
	if !ok {
		return nil, false
	}
	return &blk.wire, true
}

// decodeHeader is decodeHeaderBlock's wire header, for a JSON header.
func decodeHeader(data []byte) (*wireHeader, error) { return decodeVersionHeader(Version1, data) }

// decodeVersionHeader is decodeHeaderBlock's wire header, for a header of
// the given envelope version.
func decodeVersionHeader(version int, data []byte) (*wireHeader, error) {
	b, err := decodeHeaderBlock(version, data)
	if err != nil {
		return nil, err
	}
	return &b.wire, nil
}

// validateHeader is checkHeader into a header of its own.
func validateHeader(w *wireHeader, version int) (*header, error) {
	h := new(header)
	if err := checkHeader(w, version, h); err != nil {
		return nil, err
	}
	return h, nil
}

// encodeVersionHeader writes a header in the form of the given envelope
// version: compact for version 3, canonical JSON otherwise.
func encodeVersionHeader(version int, h *wireHeader) ([]byte, error) {
	if version == Version3 {
		return appendCompactHeader(nil, h)
	}
	return encodeHeader(h)
}
