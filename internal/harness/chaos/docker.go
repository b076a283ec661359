package chaos

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// DockerAvailable says why Docker cannot be used here (no CLI, no
// daemon, not root: the run reaches each container's RPC from inside its
// network namespace), or nil.
func DockerAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos under Docker needs root (it enters the containers' network namespaces)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Errorf("docker daemon: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dockerfile is deploy/docker/Dockerfile: the static binary on an empty
// filesystem.
const dockerfile = `FROM scratch
COPY ledgerd /ledgerd
ENV LEDGERD_HOME=/home/node
ENTRYPOINT ["/ledgerd"]
CMD ["start"]
`

// dockerImage is the tag of the image a Docker run builds.
const dockerImage = "ledgerd:chaos"

// dockerCluster runs the nodes as containers of an image built FROM
// scratch around bin, on a bridge network of their own, homes mounted from
// this machine. Kill is docker kill (SIGKILL), Pause docker pause (the
// cgroup freezer), Partition docker network disconnect (moving a side of
// several nodes onto a network of its own). RPC is reached inside each
// container's network namespace, so partitions never hide a node from
// the checks.
type dockerCluster struct {
	id      string // names every container and network of the run
	network string
	image   string // the image ID the containers run
	n       int
	info    *node.Testnet
	clients []*client.Client
	tr      []*http.Transport

	mu      sync.Mutex
	pids    []int  // container init pids; 0 while stopped
	created []bool // docker run done
	side    []int  // the partitioned side, while a partition is in force
	sideNet string
}

// newDockerCluster builds the image, creates the network and generates the
// homes in dir; nothing is started.
func newDockerCluster(ctx context.Context, dir, bin string, o node.TestnetOptions) (*dockerCluster, error) {
	if err := checkStatic(bin); err != nil {
		return nil, err
	}
	slots := o.Validators + 1
	c := &dockerCluster{
		id: fmt.Sprintf("%s%d-%d", labPrefix, os.Getpid(), labSeq.Add(1)), n: o.Validators,
		clients: make([]*client.Client, slots), tr: make([]*http.Transport, slots),
		pids: make([]int, slots), created: make([]bool, slots),
	}
	c.network = c.id
	removeStaleContainers(ctx)
	imgDir := filepath.Join(dir, "image")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(bin, filepath.Join(imgDir, "ledgerd"), 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(imgDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return nil, err
	}
	prev, _ := docker(ctx, "image", "inspect", "-f", "{{.Id}}", dockerImage)
	out, err := docker(ctx, "build", "-q", "-t", dockerImage, imgDir)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	if prev = strings.TrimSpace(prev); prev != "" && prev != strings.TrimSpace(out) {
		// The image this build replaced under the tag; Docker refuses
		// while another run's containers still use it.
		docker(ctx, "image", "rm", prev)
	}
	// Containers are made from this build's image ID: another run may
	// move the tag meanwhile.
	c.image = dockerImage
	if id := strings.TrimSpace(out); strings.HasPrefix(id, "sha256:") {
		c.image = id
	}
	os.Remove(filepath.Join(imgDir, "ledgerd"))
	for i := 0; i < o.Validators; i++ {
		o.Hostnames = append(o.Hostnames, fmt.Sprintf("node%d", i))
	}
	tn, err := node.WriteTestnet(filepath.Join(dir, "net"), o)
	if err != nil {
		return nil, fmt.Errorf("generate network: %w", err)
	}
	c.info = tn
	buf, _ := json.MarshalIndent(tn, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "net", "testnet.json"), append(buf, '\n'), 0o644); err != nil {
		return nil, err
	}
	if _, err := docker(ctx, "network", "create", "--driver", "bridge", "--label", "ledgerd-chaos="+c.id, c.network); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	for i := range c.clients {
		c.clients[i] = c.newClient(i)
	}
	return c, nil
}

// removeStaleContainers removes the containers and networks of runs whose
// process is gone (killed before it could clean up). Their label names the
// run, and the run's name its process.
func removeStaleContainers(ctx context.Context) {
	stale := func(run string) bool {
		rest, ok := strings.CutPrefix(run, labPrefix)
		if !ok {
			return false
		}
		pid, _, ok := strings.Cut(rest, "-")
		if _, err := strconv.Atoi(pid); !ok || err != nil {
			return false
		}
		_, err := os.Stat("/proc/" + pid)
		return err != nil
	}
	if out, err := docker(ctx, "ps", "-a", "--filter", "label=ledgerd-chaos", "--format", `{{.Label "ledgerd-chaos"}} {{.Names}}`); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if run, name, ok := strings.Cut(line, " "); ok && stale(run) {
				docker(ctx, "rm", "-f", name)
			}
		}
	}
	if out, err := docker(ctx, "network", "ls", "--filter", "label=ledgerd-chaos", "--format", `{{.Label "ledgerd-chaos"}} {{.Name}}`); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if run, name, ok := strings.Cut(line, " "); ok && stale(run) {
				docker(ctx, "network", "rm", name)
			}
		}
	}
}

// checkStatic refuses a dynamically linked binary, which cannot run on an
// empty filesystem.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("docker needs a static Linux binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0 for a FROM scratch image", bin)
		}
	}
	return nil
}

func (c *dockerCluster) name(i int) string {
	if i == c.n {
		return c.id + "-twin"
	}
	return fmt.Sprintf("%s-node%d", c.id, i)
}

func (c *dockerCluster) alias(i int) string {
	if i == c.n {
		return "twin"
	}
	return fmt.Sprintf("node%d", i)
}

func (c *dockerCluster) newClient(i int) *client.Client {
	nsPath := func() (string, error) {
		c.mu.Lock()
		pid := c.pids[i]
		c.mu.Unlock()
		if pid == 0 {
			return "", fmt.Errorf("%s is not running", c.name(i))
		}
		return fmt.Sprintf("/proc/%d/ns/net", pid), nil
	}
	c.tr[i] = &http.Transport{
		DialContext:         dialInNetns(nsPath),
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	hc := &http.Client{Transport: c.tr[i]}
	// The home's RPC listens on 0.0.0.0:26657 inside the container.
	cl, _ := client.NewWithOptions([]string{"http://127.0.0.1:26657"}, client.WithHTTPClient(hc))
	return cl
}

func (c *dockerCluster) Validators() int             { return c.n }
func (c *dockerCluster) Client(i int) *client.Client { return c.clients[i] }

func (c *dockerCluster) Home(i int) string {
	if i == c.n {
		return filepath.Join(filepath.Dir(c.info.Nodes[0].Home), "twin")
	}
	return c.info.Nodes[i].Home
}

func (c *dockerCluster) Start(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	created := c.created[i]
	c.mu.Unlock()
	var err error
	if created {
		// Idle connections went into the old namespace.
		c.tr[i].CloseIdleConnections()
		_, err = docker(ctx, "start", c.name(i))
	} else {
		_, err = docker(ctx, "run", "-d", "--name", c.name(i), "--hostname", c.alias(i),
			"--network", c.network, "--network-alias", c.alias(i), "--label", "ledgerd-chaos="+c.id,
			"-v", c.Home(i)+":/home/node", c.image, "start", "--home", "/home/node")
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", c.name(i), err)
	}
	out, err := docker(ctx, "inspect", "-f", "{{.State.Pid}}", c.name(i))
	if err != nil {
		return fmt.Errorf("start %s: %w", c.name(i), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid == 0 {
		return fmt.Errorf("start %s: no process (pid %q)", c.name(i), strings.TrimSpace(out))
	}
	c.mu.Lock()
	c.created[i], c.pids[i] = true, pid
	c.mu.Unlock()
	return nil
}

func (c *dockerCluster) Kill(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := docker(ctx, "kill", c.name(i)); err != nil {
		return fmt.Errorf("kill %s: %w", c.name(i), err)
	}
	if _, err := docker(ctx, "wait", c.name(i)); err != nil {
		return fmt.Errorf("kill %s: %w", c.name(i), err)
	}
	c.mu.Lock()
	c.pids[i] = 0
	c.mu.Unlock()
	return nil
}

func (c *dockerCluster) Pause(i int) error  { return c.simple("pause", i) }
func (c *dockerCluster) Resume(i int) error { return c.simple("unpause", i) }

func (c *dockerCluster) simple(verb string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := docker(ctx, verb, c.name(i)); err != nil {
		return fmt.Errorf("%s %s: %w", verb, c.name(i), err)
	}
	return nil
}

// Partition disconnects side from the run's network. A side of one is
// left with no network; a larger side is moved onto a network of its own,
// under the same aliases, so its members still reach each other.
func (c *dockerCluster) Partition(side []int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.side != nil {
		return errors.New("partition: one is already in force")
	}
	if len(side) > 1 {
		c.sideNet = c.id + "-side"
		if _, err := docker(ctx, "network", "create", "--driver", "bridge", "--label", "ledgerd-chaos="+c.id, c.sideNet); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
	}
	c.side = side
	for _, i := range side {
		if _, err := docker(ctx, "network", "disconnect", c.network, c.name(i)); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		if c.sideNet != "" {
			if _, err := docker(ctx, "network", "connect", "--alias", c.alias(i), c.sideNet, c.name(i)); err != nil {
				return fmt.Errorf("partition: %w", err)
			}
		}
	}
	return nil
}

func (c *dockerCluster) Heal() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, i := range c.side {
		if c.sideNet != "" {
			if _, err := docker(ctx, "network", "disconnect", c.sideNet, c.name(i)); err != nil {
				errs = append(errs, err)
			}
		}
		if _, err := docker(ctx, "network", "connect", "--alias", c.alias(i), c.network, c.name(i)); err != nil {
			errs = append(errs, err)
		}
	}
	if c.sideNet != "" {
		if _, err := docker(ctx, "network", "rm", c.sideNet); err != nil {
			errs = append(errs, err)
		}
	}
	c.side, c.sideNet = nil, ""
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	return nil
}

func (c *dockerCluster) AddTwin(of int) (int, error) {
	slot := c.n
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	created := c.created[slot]
	c.mu.Unlock()
	if created {
		if _, err := docker(ctx, "rm", "-f", c.name(slot)); err != nil {
			return 0, fmt.Errorf("twin: %w", err)
		}
		c.mu.Lock()
		c.created[slot], c.pids[slot] = false, 0
		c.mu.Unlock()
	}
	cfg, err := node.LoadConfig(c.Home(of))
	if err != nil {
		return 0, fmt.Errorf("twin: %w", err)
	}
	cfg.Moniker = fmt.Sprintf("twin-of-node%d", of)
	cfg.P2P.PersistentPeers = nil
	for j := 0; j < c.n; j++ {
		cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, c.info.Nodes[j].P2PAddr)
	}
	if err := writeTwinHome(c.Home(of), c.Home(slot), cfg); err != nil {
		return 0, err
	}
	return slot, nil
}

func (c *dockerCluster) Logs(i, max int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", c.name(i))
	buf, err := cmd.CombinedOutput() // the node logs to stderr
	out := string(buf)
	if err != nil {
		return err.Error()
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return strings.TrimSpace(out)
}

// Close saves each container's output to node.log in its home, then
// removes the containers and networks of the run. The image stays for the
// next run.
func (c *dockerCluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i <= c.n; i++ {
		c.mu.Lock()
		created := c.created[i]
		c.mu.Unlock()
		if created {
			if out, err := exec.CommandContext(ctx, "docker", "logs", c.name(i)).CombinedOutput(); err == nil {
				os.WriteFile(filepath.Join(c.Home(i), "node.log"), out, 0o644)
			}
			docker(ctx, "rm", "-f", c.name(i))
		}
	}
	if c.sideNet != "" {
		docker(ctx, "network", "rm", c.sideNet)
	}
	docker(ctx, "network", "rm", c.network)
}

// docker runs the docker CLI and returns its standard output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
