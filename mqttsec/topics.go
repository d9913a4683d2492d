package mqttsec

import "strings"

// DefaultTopicPrefix is the first topic level of the default scheme.
const DefaultTopicPrefix = "mqttsec"

// Topics is the topic scheme. Every topic starts with Prefix and the id of
// the party that owns it, so a broker ACL can give each identity exactly
// its own topics:
//
//	<prefix>/<server-id>/req/<method>   requests to a server (server subscribes)
//	<prefix>/<client-id>/reply          replies to a client (client subscribes)
//	<prefix>/<sender-id>/evt/<topic>    events published by a sender
//
// Ids never contain "/", "+" or "#" (see envelope ids), so each of these
// levels is unambiguous. Methods and event topics may contain "/".
type Topics struct {
	// Prefix is the first topic level(s); empty means DefaultTopicPrefix.
	Prefix string
}

func (t Topics) prefix() string {
	if t.Prefix == "" {
		return DefaultTopicPrefix
	}
	return strings.TrimSuffix(t.Prefix, "/")
}

// Request is the topic a request for method goes to.
func (t Topics) Request(server, method string) string {
	return t.requestPrefix(server) + method
}

// RequestFilter is the filter a server subscribes to for all its methods.
func (t Topics) RequestFilter(server string) string {
	return t.requestPrefix(server) + "#"
}

// Method returns the method of a request topic of server, and false if the
// topic is not one.
func (t Topics) Method(server, topic string) (string, bool) {
	return methodAfter(t.requestPrefix(server), topic)
}

// requestPrefix is what every request topic of server starts with.
func (t Topics) requestPrefix(server string) string {
	return t.prefix() + "/" + server + "/req/"
}

// methodAfter returns the method of topic, given its server's request
// prefix; a server that routes every message keeps the prefix.
func methodAfter(prefix, topic string) (string, bool) {
	m, ok := strings.CutPrefix(topic, prefix)
	return m, ok && m != ""
}

// Reply is the reply topic of client.
func (t Topics) Reply(client string) string {
	return t.prefix() + "/" + client + "/reply"
}

// Event is the topic an event of sender with the given topic goes to.
func (t Topics) Event(sender, topic string) string {
	return t.prefix() + "/" + sender + "/evt/" + topic
}

// EventFilter is the filter for every event of sender.
func (t Topics) EventFilter(sender string) string {
	return t.prefix() + "/" + sender + "/evt/#"
}

// EventTopic returns the sender and event topic of an event topic.
func (t Topics) EventTopic(topic string) (sender, event string, ok bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix()+"/")
	if !ok {
		return "", "", false
	}
	sender, event, ok = strings.Cut(rest, "/evt/")
	if !ok || sender == "" || event == "" || strings.Contains(sender, "/") {
		return "", "", false
	}
	return sender, event, true
}
