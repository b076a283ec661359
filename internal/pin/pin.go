//go:build tools

// Package pin keeps the networking dependencies that later packages build on
// pinned in go.mod at known-good versions, before any code imports them.
package pin

import (
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
)
