package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// proc is a child process the harness started and stops.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// startProc starts a command in its own process group with its output in
// logPath.
func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (only the process we started, by its
// pid) and waits, then SIGKILL after the timeout.
func (p *proc) stop(timeout time.Duration) {
	if p == nil || p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// freePort returns a TCP port free on loopback right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200 or the process exits.
func waitHTTP(ctx context.Context, url string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.log.Name())
		}
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer within %s", url, timeout)
}

// --- PostgreSQL -------------------------------------------------------------

// pgServer is a throwaway PostgreSQL cluster in a directory of its own.
type pgServer struct {
	bin      string
	dir      string
	port     int
	settings []string
	asRoot   bool
}

func findPGBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

// pgSettings are the server settings of the benchmark cluster. They are
// what a production deployment on a machine like this one would set; the
// durable profile keeps fsync, full_page_writes and synchronous_commit on.
func pgSettings(durable bool) []string {
	s := []string{
		"listen_addresses=127.0.0.1",
		"max_connections=200",
		"shared_buffers=2GB", // ~1/8 of RAM; the working set fits
		"wal_buffers=64MB",   // group commits of a few hundred rows
		"max_wal_size=8GB",   // no checkpoint storm inside a 15 s run
		"min_wal_size=1GB",   //
		"checkpoint_timeout=15min",
		"checkpoint_completion_target=0.9",
		"wal_compression=lz4",
		"effective_io_concurrency=200", // SSD
		"random_page_cost=1.1",
		"log_min_duration_statement=1000",
		"track_io_timing=on",
	}
	if durable {
		return append(s, "fsync=on", "full_page_writes=on", "synchronous_commit=on")
	}
	return append(s, "fsync=off", "full_page_writes=off", "synchronous_commit=off")
}

// pgRun runs a PostgreSQL program as the postgres user when we are root
// (PostgreSQL refuses to run as root).
func (s *pgServer) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, prog)
	if s.asRoot {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func startPostgres(dir string, durable bool) (*pgServer, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &pgServer{bin: bin, dir: dir, port: port, settings: pgSettings(durable), asRoot: os.Geteuid() == 0}
	// A cluster left by an earlier run in the same work directory.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if s.asRoot {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		// The parent must be traversable by postgres.
		os.Chmod(filepath.Dir(dir), 0o755)
	}
	if out, err := s.command("initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	opts := []string{"-p", strconv.Itoa(port), "-k", dir}
	for _, kv := range s.settings {
		opts = append(opts, "-c", kv)
	}
	args := []string{"-D", dir, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start", "-o", strings.Join(opts, " ")}
	if out, err := s.command("pg_ctl", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return s, nil
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *pgServer) stop() {
	if s == nil {
		return
	}
	s.command("pg_ctl", "-D", s.dir, "-m", "fast", "-w", "stop").Run()
}

// postmasterPID reads the cluster's postmaster pid.
func (s *pgServer) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(s.dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// createDatabase creates a fresh database next to the one adminURL names
// and returns its URL.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", redactURL(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	cfg := conn.Config()
	u := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name)
	if cfg.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	}
	if cfg.TLSConfig == nil {
		u += "?sslmode=disable"
	}
	return u, nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			if k := strings.Index(u[j+3:i], ":"); k >= 0 {
				return u[:j+3+k+1] + "***" + u[i:]
			}
		}
	}
	return u
}

// --- Redis ------------------------------------------------------------------

// startRedis runs redis-server as a production asynq deployment would:
// AOF with fsync every second, no RDB snapshots.
func startRedis(ctx context.Context, dir string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	// Data left by an earlier run in the same work directory.
	if err := os.RemoveAll(dir); err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	p, err := startProc("redis-server", filepath.Join(dir, "redis.log"), os.Environ(), "redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	for i := 0; ; i++ {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return p, url, nil
		}
		if i > 100 || p.exited() {
			p.stop(time.Second)
			return nil, "", fmt.Errorf("redis-server did not start (log: %s)", filepath.Join(dir, "redis.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- CPU accounting -----------------------------------------------------------

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU seconds a process has used.
func procCPU(pid int) float64 { return procStat(pid, false) }

// treeCPU returns the CPU seconds of a process and its children: those it
// has reaped (cutime, cstime) and those still running. Redis forks to
// rewrite its AOF; PostgreSQL runs a process per connection.
func treeCPU(pid int) float64 {
	t := procStat(pid, true)
	for _, c := range childPIDs(pid) {
		t += procStat(c, true)
	}
	return t
}

func procStat(pid int, children bool) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	if children && len(f) >= 15 {
		cut, _ := strconv.ParseFloat(f[13], 64)
		cst, _ := strconv.ParseFloat(f[14], 64)
		ut += cut
		st += cst
	}
	return (ut + st) / clockTicks
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, c)
			}
		}
	}
	return out
}

// cpuSampler sums CPU seconds per component.
type cpuSampler struct {
	gateway, bare, bareQ, redis, postmaster int
}

type cpuSample map[string]float64

func (c cpuSampler) sample() cpuSample {
	s := cpuSample{}
	if c.gateway > 0 {
		s["gateway"] = procCPU(c.gateway)
	}
	if c.bare > 0 {
		s["bare"] = procCPU(c.bare)
	}
	if c.bareQ > 0 {
		s["bare-enqueue"] = procCPU(c.bareQ)
	}
	if c.redis > 0 {
		s["redis"] = treeCPU(c.redis)
	}
	if c.postmaster > 0 {
		s["postgres"] = treeCPU(c.postmaster)
	}
	s["machine"] = machineBusy()
	return s
}

// machineBusy returns the machine's non-idle CPU seconds.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line := strings.SplitN(string(b), "\n", 2)[0]
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		busy += x
	}
	return busy / clockTicks
}

// cores returns the cores each component used between two samples.
func cores(a, b cpuSample, d time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d > 0 {
			out[k] = (v - a[k]) / d.Seconds()
		}
	}
	return out
}
