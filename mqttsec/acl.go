package mqttsec

import (
	"bytes"
	"fmt"
	"sort"
)

// ACLIdentity describes one party for a broker ACL: its id (which must also
// be its MQTT username, or its certificate's common name with
// use_identity_as_username), the servers it calls, whether it serves
// requests itself, and whose events it reads.
type ACLIdentity struct {
	ID         string
	Calls      []string
	Serves     bool
	EventsFrom []string
}

// MosquittoACL returns a Mosquitto acl_file that lets each identity touch
// only its own part of the topic scheme: read its own replies, publish
// requests only to the servers it calls, read requests only if it serves
// them (then publish replies), publish only its own events, and read events
// only from the senders listed. It is a second wall behind the envelope,
// which refuses forged, redirected and replayed messages on its own.
//
// Mosquitto 2 checks an acl_file only as it delivers and accepts messages:
// it grants every subscription, a forbidden one included, and then drops
// what the client may not read, so a wrong identity shows as requests
// with no reply (ErrNoReply), not as a failed Start. A forbidden publish
// is refused at once on MQTT 5 (ErrPublishRefused) and dropped silently on
// MQTT 3.1.1. Its dynamic security plugin, given the same rules as roles,
// refuses a forbidden subscription in the SUBACK, and Start fails with
// ErrSubscribeRefused.
//
// Brokers other than Mosquitto take the same rules in their own syntax:
// per user, read "<prefix>/<id>/reply" (and "<prefix>/<id>/req/#" for
// servers), write "<prefix>/<server>/req/#" for each server called,
// "<prefix>/+/reply" for servers, "<prefix>/<id>/evt/#", and read
// "<prefix>/<sender>/evt/#" for each event source.
func (t Topics) MosquittoACL(ids []ACLIdentity) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# mqttsec topic scheme under %q; generated, one block per identity.\n", t.prefix())
	seen := map[string]bool{}
	sorted := append([]ACLIdentity(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, id := range sorted {
		if err := validID(id.ID); err != nil {
			return nil, err
		}
		if seen[id.ID] {
			return nil, fmt.Errorf("%w: identity %q listed twice", ErrInvalidConfig, id.ID)
		}
		seen[id.ID] = true
		fmt.Fprintf(&b, "\nuser %s\n", id.ID)
		fmt.Fprintf(&b, "topic read %s\n", t.Reply(id.ID))
		for _, s := range id.Calls {
			if err := validID(s); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "topic write %s\n", t.RequestFilter(s))
		}
		if id.Serves {
			fmt.Fprintf(&b, "topic read %s\n", t.RequestFilter(id.ID))
			fmt.Fprintf(&b, "topic write %s\n", t.Reply("+"))
		}
		fmt.Fprintf(&b, "topic write %s\n", t.EventFilter(id.ID))
		for _, s := range id.EventsFrom {
			if err := validID(s); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "topic read %s\n", t.EventFilter(s))
		}
	}
	return b.Bytes(), nil
}
