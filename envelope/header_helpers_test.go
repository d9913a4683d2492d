package envelope

// The tests read and check headers as wire headers; the package does so in
// headerBlocks (see readHeaderBlock).

// readHeader parses the canonical header; ok is false for anything else.
func readHeader(b []byte) (*wireHeader, bool) {
	blk := new(headerBlock)
	if !readHeaderBlock(blk, b) {
		return nil, false
	}
	return &blk.wire, true
}

// compactBlock is readCompactHeader into a block of its own.
func compactBlock(b []byte) (*headerBlock, bool) {
	blk := new(headerBlock)
	if !readCompactHeader(blk, b) {
		return nil, false
	}
	return blk, true
}

// headerBlockOf is decodeHeaderBlock into a block of its own.
func headerBlockOf(version int, data []byte) (*headerBlock, error) {
	blk := new(headerBlock)
	if err := decodeHeaderBlock(blk, version, data); err != nil {
		return nil, err
	}
	return blk, nil
}

// decodeHeader is decodeHeaderBlock's wire header, for a JSON header.
func decodeHeader(data []byte) (*wireHeader, error) { return decodeVersionHeader(Version1, data) }

// decodeVersionHeader is decodeHeaderBlock's wire header, for a header of
// the given envelope version.
func decodeVersionHeader(version int, data []byte) (*wireHeader, error) {
	b, err := headerBlockOf(version, data)
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
