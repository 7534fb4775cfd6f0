package testnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PolicyFile is an agency's sharing policy in its directory.
const PolicyFile = "policy.yaml"

// PolicyPath is the member's sharing policy file.
func (m *Member) PolicyPath() string { return filepath.Join(m.Dir, PolicyFile) }

// WritePolicy writes the testnet's starting policy for m: GREEN and CLEAR
// records of every kind go to every partner, so replication shows at once.
// The node reloads the file when it changes.
func (m *Member) WritePolicy(partners []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# Sharing policy of %s (testnet default): GREEN and CLEAR records of
# every kind go to every partner. Edit and save: the node reloads it within a
# second, and `+"`watchfed status`"+` shows a refused file's error. Example:
# give FR-SBDU AMBER records too, without statements and addresses:
#   FR-SBDU:
#     kinds: [designation, denial]
#     max_marking: AMBER
#     redact: [statement, addresses]
agency: %s
default: deny
partners:
`, m.Agency, m.Agency)
	if len(partners) == 0 {
		b.Reset()
		fmt.Fprintf(&b, "agency: %s\ndefault: deny\npartners: {}\n", m.Agency)
	}
	for _, p := range partners {
		if p == m.Agency {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n    kinds: [designation, denial]\n    max_marking: GREEN\n", p)
	}
	// Write then rename, so the node never reads half a file.
	tmp := m.PolicyPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.PolicyPath())
}
