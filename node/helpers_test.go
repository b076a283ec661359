package node

import (
	dto "github.com/prometheus/client_model/go"
)

// blocksSynced reads the node's blocks-synced counter.
func blocksSynced(n *Node) uint64 {
	var m dto.Metric
	if err := n.metrics.BlocksSynced.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
