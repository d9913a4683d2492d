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

// decodeHeader is decodeHeaderBlock's wire header.
func decodeHeader(data []byte) (*wireHeader, error) {
	b, err := decodeHeaderBlock(data)
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
