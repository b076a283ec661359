//go:build simplant

package ledger

// plantLastCommitCurrentSet plants a bug on purpose: Execute verifies a
// block's last commit against the set of the block's own height (the
// current set) instead of the set of the commit's height. It exists only
// in builds with -tags simplant, for consensus/sim's planted-bug tests
// (docs/testing.md, "Validator churn in the simulator").
var plantLastCommitCurrentSet bool

// PlantLastCommitCurrentSet turns the planted bug on or off (simplant
// builds only; not safe while blocks execute).
func PlantLastCommitCurrentSet(on bool) { plantLastCommitCurrentSet = on }
