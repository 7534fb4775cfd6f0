package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/watchfed/watchfed/node"
)

// Compose is a federation of agencies in containers of the watchfed image,
// one per agency on one Docker network, described by DIR/compose.yaml
// (docker compose or docker-compose). Each agency's directory DIR/<agency>
// is its container's /data: certificates, node.yaml, policy.yaml and data.
type Compose struct {
	Dir      string
	Project  string // compose project; containers are PROJECT-<service>
	Image    string
	Members  []*Member
	services []string
}

// ContainerPort is where every node listens inside its container.
const ContainerPort = 7400

// nodeUID is the image's user (Dockerfile USER): it must own /data.
const nodeUID = 65532

// Service is the compose service (and network name) of an agency: DE-BAFA → de-bafa.
func Service(agency string) string { return strings.ToLower(agency) }

// PrepareCompose writes DIR/compose.yaml and every agency's directory:
// a CA, a node certificate for its service name and 127.0.0.1, a client
// certificate (DIR/<agency>/env, reaching the node on 127.0.0.1:basePort+i),
// node.yaml and a policy sharing GREEN records with every partner.
func PrepareCompose(dir, project, image string, nodes, basePort int) (*Compose, error) {
	if nodes < 1 {
		return nil, errors.New("at least 1 node")
	}
	c := &Compose{Dir: dir, Project: project, Image: image}
	var all []string
	for i := 0; i < nodes; i++ {
		all = append(all, AgencyID(i))
	}
	var y strings.Builder
	fmt.Fprintf(&y, "# A federation of %d agencies, one container each (see README, Containers).\n", nodes)
	fmt.Fprintf(&y, "# Made by `watchfed testnet compose`; the image is the repository's Dockerfile.\n")
	fmt.Fprintf(&y, "version: \"3.8\"\nservices:\n")
	for i, agency := range all {
		svc := Service(agency)
		m := &Member{Agency: agency, Dir: filepath.Join(dir, agency), Addr: fmt.Sprintf("127.0.0.1:%d", basePort+i)}
		cfg := node.Defaults()
		cfg.Agency, cfg.Listen, cfg.Advertise, cfg.DataDir = agency, m.Addr, fmt.Sprintf("%s:%d", svc, ContainerPort), m.Dir
		if err := os.MkdirAll(m.Dir, 0o700); err != nil {
			return nil, err
		}
		env, err := node.EnsureDevCerts(&cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", agency, err)
		}
		m.Env = env
		conf := fmt.Sprintf("agency: %s\nlisten: 0.0.0.0:%d\nadvertise: %s:%d\ndata_dir: .\nlog_format: json\ntls:\n  ca_cert: certs/ca.pem\n  cert: certs/node.pem\n  key: certs/node-key.pem\npolicy: %s\n",
			agency, ContainerPort, svc, ContainerPort, PolicyFile)
		if err := os.WriteFile(m.ConfigPath(), []byte(conf), 0o600); err != nil {
			return nil, err
		}
		if _, err := os.Stat(m.PolicyPath()); err != nil {
			if err := m.WritePolicy(all); err != nil {
				return nil, err
			}
		}
		c.Members = append(c.Members, m)
		c.services = append(c.services, svc)
		fmt.Fprintf(&y, "  %s:\n    image: %s\n    container_name: %s-%s\n    hostname: %s\n", svc, image, project, svc, svc)
		fmt.Fprintf(&y, "    command: [\"node\", \"--config\", \"/data/node.yaml\"]\n")
		fmt.Fprintf(&y, "    volumes: [\"./%s:/data\"]\n", agency)
		fmt.Fprintf(&y, "    ports: [\"127.0.0.1:%d:%d\"]\n", basePort+i, ContainerPort)
		fmt.Fprintf(&y, "    networks: [federation]\n")
	}
	fmt.Fprintf(&y, "networks:\n  federation:\n    name: %s-net\n", project)
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(y.String()), 0o644); err != nil {
		return nil, err
	}
	return c, c.chown()
}

// chown gives the agencies' directories to the image's user; only root can,
// and only root needs to (others run the containers as themselves).
func (c *Compose) chown() error {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, m := range c.Members {
		err := filepath.WalkDir(m.Dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nodeUID, nodeUID)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// compose runs docker compose (the plugin) or docker-compose (v1) on the file.
func (c *Compose) compose(ctx context.Context, args ...string) error {
	base := []string{"-p", c.Project, "-f", filepath.Join(c.Dir, "compose.yaml")}
	name, pre := "docker", []string{"compose"}
	if exec.Command("docker", "compose", "version").Run() != nil {
		name, pre = "docker-compose", nil
	}
	return run(ctx, name, append(append(pre, base...), args...)...)
}

func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 20))
	}
	return nil
}

// Container is the container of member i.
func (c *Compose) Container(i int) string { return c.Project + "-" + c.services[i] }

// Network is the compose network.
func (c *Compose) Network() string { return c.Project + "-net" }

// Up starts the containers and forms the federation: the first agency
// founds it and invites the others, whose containers restart to join with
// the invitation in their /data.
func (c *Compose) Up(ctx context.Context) error {
	if err := c.compose(ctx, "up", "-d"); err != nil {
		return err
	}
	for _, m := range c.Members {
		if err := m.waitHealthy(ctx, nil); err != nil {
			return err
		}
	}
	fed, conn, err := founder(ctx, c.Members[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	for i, m := range c.Members[1:] {
		path := filepath.Join(m.Dir, node.InvitationFile)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := invite(ctx, fed, m, fmt.Sprintf("%s:%d", c.services[i+1], ContainerPort), path, c.Members[:i+1]); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(path, nodeUID, nodeUID); err != nil {
				return err
			}
		}
		if err := run(ctx, "docker", "restart", c.Container(i+1)); err != nil {
			return err
		}
		if err := m.waitHealthy(ctx, nil); err != nil {
			return err
		}
	}
	return (&Net{Members: c.Members}).WaitFormed(ctx)
}

// Down removes the containers and the network (the data stays in Dir).
func (c *Compose) Down(ctx context.Context) error { return c.compose(ctx, "down", "-t", "5") }

// Logs returns a container's log (for a failing test).
func (c *Compose) Logs(i int) string {
	out, _ := exec.Command("docker", "logs", "--tail", "40", c.Container(i)).CombinedOutput()
	return string(out)
}

// Fault kinds of containers.
const (
	FaultDisconnect = "disconnect" // a container off the network
)

// Nodes implements jepsen.Nemesis.
func (c *Compose) Nodes() []*Member { return c.Members }

// Kinds implements jepsen.Nemesis: what Docker can do to a container.
func (c *Compose) Kinds() []string { return []string{FaultDisconnect, FaultKill, FaultPause} }

// Inject implements jepsen.Nemesis.
func (c *Compose) Inject(ctx context.Context, kind string, d Draw) (string, func(context.Context) error, error) {
	name, m := c.Container(d.A), c.Members[d.A]
	switch kind {
	case FaultDisconnect:
		if err := run(ctx, "docker", "network", "disconnect", c.Network(), name); err != nil {
			return "", nil, err
		}
		return "docker network disconnect " + name, func(ctx context.Context) error { return c.connect(ctx, d.A) }, nil
	case FaultKill:
		if err := run(ctx, "docker", "kill", "-s", "KILL", name); err != nil {
			return "", nil, err
		}
		return "docker kill -s KILL " + name, func(ctx context.Context) error {
			if err := run(ctx, "docker", "start", name); err != nil {
				return err
			}
			return m.waitHealthy(ctx, nil)
		}, nil
	case FaultPause:
		if err := run(ctx, "docker", "pause", name); err != nil {
			return "", nil, err
		}
		return "docker pause " + name, func(ctx context.Context) error { return run(ctx, "docker", "unpause", name) }, nil
	}
	return "", nil, fmt.Errorf("unknown fault %q", kind)
}

// connect puts a container back on the network under its service name.
func (c *Compose) connect(ctx context.Context, i int) error {
	return run(ctx, "docker", "network", "connect", "--alias", c.services[i], c.Network(), c.Container(i))
}

// HealAll implements jepsen.Nemesis: every container running, unpaused, connected.
func (c *Compose) HealAll(ctx context.Context) error {
	for i, m := range c.Members {
		name := c.Container(i)
		state, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Status}} {{json .NetworkSettings.Networks}}", name).Output()
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		s := string(state)
		switch {
		case strings.HasPrefix(s, "paused"):
			err = run(ctx, "docker", "unpause", name)
		case !strings.HasPrefix(s, "running"):
			err = run(ctx, "docker", "start", name)
		}
		if err != nil {
			return err
		}
		if !strings.Contains(s, c.Network()) {
			if err := c.connect(ctx, i); err != nil {
				return err
			}
		}
		hctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = m.waitHealthy(hctx, nil)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
