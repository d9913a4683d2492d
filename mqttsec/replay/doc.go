// Package replay holds the durable state that lets replay protection
// survive restarts, crashes and several gateway replicas:
//
//   - [FileCounter], a sender's message counter that never goes backwards
//     across restarts and crashes, without a disk write per message;
//   - [FileStore], a receiver's replay windows in a crash-safe file, with
//     group commit;
//   - [RedisStore], replay windows shared by several replicas through Redis
//     or a Redis Cluster, and [RedisCounter], the message counter those
//     replicas share as a sender;
//   - [MemoryStore], replay windows in process memory, which a restart
//     forgets, built on [Window], the sliding window of one sender.
//
// All but Window implement the envelope package's Counter or ReplayStore. A FileStore
// or FileCounter holds its files alone until Close: a second one on the same
// files, in any process, is ErrLocked (on Linux, macOS and the BSDs, which
// have flock). Replicas share state through Redis.
package replay
