// Package packetlimit bounds what an MQTT client reads from its broker.
//
// Both Paho clients allocate a packet's whole declared length (up to MQTT's
// 256 MiB) as soon as its fixed header arrives, before any of it is read;
// so a hostile broker, or any client of a broker without a size limit,
// could make every subscriber allocate 256 MiB per message. Wrap puts a
// reader between the connection and Paho that follows the MQTT framing:
// packets up to the limit pass through untouched; a PUBLISH over it reaches
// Paho with its topic, packet id and properties but an empty payload, whose
// bytes are discarded as they arrive (Paho then acknowledges it as usual, so
// the broker's session stays healthy, and the empty payload is refused as
// any non-envelope is); any other packet over the limit, or a malformed
// length, fails the connection.
package packetlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
)

// Errors that fail the connection (returned by Read, then for good).
var (
	// ErrTooLarge: a packet other than PUBLISH, or a PUBLISH's topic and
	// properties, longer than the limit.
	ErrTooLarge = errors.New("mqtt packet from the broker over the size limit")
	// ErrMalformed: a remaining length of more than four bytes, or a
	// PUBLISH whose topic or properties run past its end.
	ErrMalformed = errors.New("malformed mqtt packet from the broker")
)

// Options configures Wrap.
type Options struct {
	// Limit is the largest packet (remaining length) passed through whole.
	Limit int
	// V5 says the stream is MQTT 5, whose PUBLISH carries properties.
	V5 bool
	// Dropped, if set, is called (on the reading goroutine) with the topic
	// and remaining length of each PUBLISH whose payload was dropped.
	Dropped func(topic string, size int)
	// Refused, if set, is called (on the reading goroutine) with the error
	// (ErrTooLarge or ErrMalformed) that fails the connection.
	Refused func(err error)
}

const publish = 3 // MQTT control packet type

// Wrap returns c with reads bounded as the package describes. Only Read is
// changed; writes, deadlines and Close go to c.
func Wrap(c net.Conn, o Options) net.Conn {
	return &conn{Conn: c, in: bufio.NewReaderSize(c, 4096), o: o}
}

type conn struct {
	net.Conn
	in *bufio.Reader
	o  Options

	out     []byte  // bytes ready for Read, before anything else
	header  [5]byte // out's array for a fixed header that passes whole
	pass    int     // bytes of the current packet still to pass through
	discard int     // payload bytes of a shrunk PUBLISH still to drop
	err     error   // sticky: the connection is unusable after an error
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		switch {
		case len(p) == 0:
			return 0, nil
		case len(c.out) > 0:
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		case c.err != nil:
			return 0, c.err
		case c.pass > 0:
			n, err := c.in.Read(p[:min(len(p), c.pass)])
			c.pass -= n
			if err != nil {
				c.err = err
			}
			if n > 0 || err == nil {
				return n, nil
			}
		case c.discard > 0:
			n, err := c.in.Discard(c.discard)
			c.discard -= n
			if err != nil {
				c.err = err
			}
		default:
			c.err = c.next()
			if c.o.Refused != nil && (errors.Is(c.err, ErrTooLarge) || errors.Is(c.err, ErrMalformed)) {
				c.o.Refused(c.err)
			}
		}
	}
}

// next reads the fixed header of the next packet and decides what Read
// passes on: the packet whole, a PUBLISH without its payload, or an error.
func (c *conn) next() error {
	first, err := c.in.ReadByte()
	if err != nil {
		return err
	}
	length, vbi, err := readLength(c.in, c.header[1:])
	if err != nil {
		return err
	}
	if length <= c.o.Limit {
		c.header[0] = first
		c.out = c.header[:1+len(vbi)]
		c.pass = length
		return nil
	}
	if first>>4 != publish {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, length, c.o.Limit)
	}
	head, topic, err := c.publishHead(first, length)
	if err != nil {
		return err
	}
	c.out = append(append([]byte{first}, appendLength(nil, len(head))...), head...)
	c.discard = length - len(head)
	if c.o.Dropped != nil {
		c.o.Dropped(topic, length)
	}
	return nil
}

// publishHead reads a PUBLISH's variable header (topic, packet id, v5
// properties): everything before the payload.
func (c *conn) publishHead(first byte, length int) (head []byte, topic string, err error) {
	take := func(n int) ([]byte, error) {
		if n > length-len(head) {
			return nil, fmt.Errorf("%w: publish header runs past the packet", ErrMalformed)
		}
		if len(head)+n > c.o.Limit {
			return nil, fmt.Errorf("%w: publish header of more than %d bytes", ErrTooLarge, c.o.Limit)
		}
		start := len(head)
		head = append(head, make([]byte, n)...)
		if _, err := io.ReadFull(c.in, head[start:]); err != nil {
			return nil, err
		}
		return head[start:], nil
	}
	b, err := take(2)
	if err != nil {
		return nil, "", err
	}
	t, err := take(int(b[0])<<8 | int(b[1]))
	if err != nil {
		return nil, "", err
	}
	topic = string(t)
	if qos := first >> 1 & 3; qos > 0 {
		if _, err := take(2); err != nil {
			return nil, "", err
		}
	}
	if c.o.V5 {
		var buf [4]byte
		n, vbi, err := readLength(c.in, buf[:])
		if err != nil {
			return nil, "", err
		}
		if len(head)+len(vbi) > length {
			return nil, "", fmt.Errorf("%w: publish header runs past the packet", ErrMalformed)
		}
		head = append(head, vbi...)
		if _, err := take(n); err != nil {
			return nil, "", err
		}
	}
	return head, topic, nil
}

// readLength reads an MQTT variable byte integer into buf (room for 4
// bytes), returning its value and its bytes (within buf).
func readLength(r io.ByteReader, buf []byte) (int, []byte, error) {
	value := 0
	for i := range 4 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		buf[i] = b
		value |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return value, buf[:i+1], nil
		}
	}
	return 0, nil, fmt.Errorf("%w: remaining length of more than 4 bytes", ErrMalformed)
}

// appendLength appends n as an MQTT variable byte integer.
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, d)
		}
		b = append(b, d|0x80)
	}
}
