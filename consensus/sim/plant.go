package sim

// plant names a bug put in on purpose, to show which check catches it
// (docs/testing.md, "Validator churn in the simulator"). Options.plant is
// unexported: only this package's tests set it. The bugs of the shipped
// ledger code are planted by the ledger and staking packages themselves,
// in builds with -tags simplant (their plant_simplant.go), and turned on
// by this package's tests built the same way.
type plant string

const (
	// plantEarlySet: one honest node's ledger state takes a set change
	// one height early: after the block that changes the set of H+2, it
	// holds the new set as the set of H+1 as well.
	plantEarlySet plant = "early-set"
	// plantCatchupSet: a catch-up answer's commit is turned into votes
	// with the set of the node's current height instead of the set of the
	// commit's height.
	plantCatchupSet plant = "catchup-current-set"
)

// planted reports whether the run plants p.
func (s *simulation) planted(p plant) bool { return s.opts.plant == p }

// plantNode is the node plantEarlySet plants its bug on: the first honest
// genesis validator whose disk does not fail.
func (n *node) plantNode() bool {
	for _, m := range n.s.nodes {
		if m.honest && m.disk == nil {
			return m == n
		}
	}
	return false
}
