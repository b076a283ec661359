//go:build simplant

package staking

// plantSlashSkipsUnbonding plants a bug on purpose: a slash forgets the
// unbonding tokens at stake and takes everything from the validator's
// bonded tokens. It exists only in builds with -tags simplant, for
// consensus/sim's planted-bug tests (docs/testing.md, "Validator churn in
// the simulator").
var plantSlashSkipsUnbonding bool

// PlantSlashSkipsUnbonding turns the planted bug on or off (simplant
// builds only; not safe while blocks execute).
func PlantSlashSkipsUnbonding(on bool) { plantSlashSkipsUnbonding = on }
