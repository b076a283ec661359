package wallet

import (
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// FuzzDecodeKeyFile feeds arbitrary bytes to the key file decoder: it
// must never panic, and must refuse KDF costs outside the bounds before
// any derivation runs.
func FuzzDecodeKeyFile(f *testing.F) {
	key, _ := crypto.PrivKeyFromSeed(make([]byte, 32))
	kf, _ := encrypt(key, []byte("pw"), KDFParams{Time: 1, MemoryKiB: 8, Threads: 1})
	b, _ := jsonIndent(kf)
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"kdf":{"name":"argon2id","time":1,"memory_kib":4294967295,"threads":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := decodeKeyFile(data)
		if err != nil {
			return
		}
		if kf.KDF.KDFParams.validate() != nil {
			t.Fatal("accepted out-of-bounds KDF costs")
		}
		if kf.KDF.MemoryKiB <= 1<<12 {
			kf.decrypt([]byte("pw")) // must not panic
		}
	})
}
