//go:build simplant

package sim

import (
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

func init() {
	productPlants["lastcommit-current-set"] = ledger.PlantLastCommitCurrentSet
	productPlants["slash-skips-unbonding"] = staking.PlantSlashSkipsUnbonding
}
