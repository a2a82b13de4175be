//! Command-line arguments, stage one: what the user typed, as clap parsed it.
//!
//! Terraform users type `-flag`; everyone else types `--flag`. Both work:
//! [`normalize_args`] rewrites single-dash long flags before clap sees them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tg",
    version,
    about = "TestGrid: declarative, reviewable test environments",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// Work in DIR instead of the current directory.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub chdir: Option<PathBuf>,

    /// The session to work on (also: TG_SESSION).
    #[arg(
        long,
        global = true,
        env = "TG_SESSION",
        default_value = "default",
        hide_env = true,
        help_heading = "Global options"
    )]
    pub session: String,

    /// Never colour the output (also: NO_COLOR=1).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare the working directory: state store, sessions, images checked.
    Init(InitArgs),
    /// Check the testbed files and report every problem.
    Validate(ValidateArgs),
    /// Rewrite testbed files in the canonical layout.
    Fmt(FmtArgs),
    /// Show what apply would do.
    Plan(PlanArgs),
    /// Make the testbed real (from the config, or from a saved plan).
    Apply(ApplyArgs),
    /// Remove everything the session made.
    Destroy(DestroyArgs),
    /// Show the state, or a saved plan.
    Show(ShowArgs),
    /// Show output values; `tg output inventory` gives the Ansible inventory.
    Output(OutputArgs),
    /// Ansible dynamic inventory script interface.
    Inventory(InventoryArgs),
    /// Inspect and edit recorded state.
    #[command(subcommand)]
    State(StateCommand),
    /// Remove a session's lock by its id.
    ForceUnlock(ForceUnlockArgs),
    /// Print the dependency graph of the testbed's instances.
    Graph(GraphArgs),
    /// Evaluate expressions against the testbed and its state, one per line (stdin).
    Console(ConsoleArgs),
    /// Run a command on nodes.
    Exec(ExecArgs),
    /// Capture a network's or a node's packets as pcap, from outside the nodes.
    Capture(CaptureArgs),
    /// Change the impairments (delay, loss, rate...) of running links, without editing the testbed.
    Impair(ImpairArgs),
    /// Manage sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Relay stdin/stdout to a node's TCP port (ssh's ProxyCommand for netns nodes).
    Proxy(ProxyArgs),
    /// Print an OpenSSH config block for the session's nodes (`ssh -F FILE NODE`).
    SshConfig,
    /// Open a shell on a netns node, or run a command, over real SSH (system `ssh`).
    Ssh(SshArgs),
    /// The hosts of the testbed's ssh pools and their leases.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// List the platforms this machine offers, what each can host, and why not.
    Platforms(PlatformsArgs),
    /// Serve the REST API (`/v1`) that the `testgrid` Python client drives.
    Serve(ServeArgs),
    /// Print tg's version.
    Version(VersionArgs),
    /// Print a shell completion script (`tg completion bash > /etc/bash_completion.d/tg`).
    Completion(CompletionArgs),
    /// Print tg's manual page in roff (`tg man > tg.1; man ./tg.1`).
    Man,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// `network.NAME`, or one node (`node.edge[0]`, a selector matching one node).
    pub target: String,
    /// Write the pcap to FILE (0600) instead of stdout.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,
    /// Stop after COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// A BPF filter (`icmp`, `tcp port 80`), as tcpdump takes it.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// For a node on several networks: the link to NAME (default: its first network).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImpairArgs {
    /// `node.X`, `node.X[0]` (every link of the nodes) or `network.Y` (every node link on it).
    pub target: String,
    /// Impairments to set, as KEY=VALUE pairs: `delay=100ms,loss=5%` (keys of `impair`); others stay.
    #[arg(
        long,
        value_name = "KEY=VALUE,...",
        conflicts_with = "clear",
        required_unless_present = "clear"
    )]
    pub set: Option<String>,
    /// Remove every impairment of the target's links.
    #[arg(long)]
    pub clear: bool,
    /// Only the links to network NAME (the network's instance name, `lab` or `lab-0`).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Wait this long for the session's lock (`30s`, `2m`).
    #[arg(long = "lock-timeout", default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Debug, Args)]
pub struct PlatformsArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Default)]
pub struct InitArgs {}

#[derive(Debug, Args, Default, Clone)]
pub struct VarArgs {
    /// Set a variable: `-var name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variable values from a `*.tgvars.hcl` file (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Print one JSON document (schemas/validate.schema.json).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Do not write; exit 3 and list the files that are not formatted.
    #[arg(long)]
    pub check: bool,
    /// Print the diff of the changes.
    #[arg(long)]
    pub diff: bool,
    /// Files to format (default: every `*.tg.hcl` and `*.tgvars.hcl` in the directory).
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    #[default]
    Text,
    Markdown,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PlanOptions {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Plan the destruction of everything.
    #[arg(long)]
    pub destroy: bool,
    /// Limit the plan to these instances and what they depend on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Leave these instances out, with what depends on them (destroying:
    /// with what they depend on); combines with `-target` (repeatable).
    #[arg(long = "exclude", value_name = "ADDR")]
    pub excludes: Vec<String>,
    /// Only accept changes made outside tg into state; change nothing.
    #[arg(long = "refresh-only")]
    pub refresh_only: bool,
    /// Force the replacement of these instances (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// Check recorded objects against the platforms first (default true).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub refresh: bool,
    /// How long to wait for the session's lock, such as `30s` or `5m`.
    #[arg(long = "lock-timeout", default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub options: PlanOptions,
    /// Save the plan to FILE for `tg apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print one JSON document (schemas/plan.schema.json).
    #[arg(long)]
    pub json: bool,
    /// Text for terminals, or markdown for a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `tg plan -out FILE`.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub options: PlanOptions,
    /// Do not ask for confirmation.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Most instances worked on at once (at least 1).
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    pub parallelism: usize,
    /// Print one JSON document of the result (needs `-auto-approve` or a plan file).
    #[arg(long)]
    pub json: bool,
    /// Write the timeline of every operation to FILE (Chrome trace events: open it in Perfetto).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub options: PlanOptions,
    /// Do not ask for confirmation.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Most instances worked on at once (at least 1).
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    pub parallelism: usize,
    /// Print one JSON document of the result (needs `-auto-approve`).
    #[arg(long)]
    pub json: bool,
    /// Write the timeline of every operation to FILE (Chrome trace events: open it in Perfetto).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A saved plan; without it, the session's state.
    pub plan_file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// One output by name (also shows a sensitive one), or `inventory`.
    pub name: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// Print a string value without quotes.
    #[arg(long)]
    pub raw: bool,
    /// With `inventory`: `script` (the dynamic-inventory `--list` answer),
    /// or a static inventory file for `ansible -i FILE`: `yaml` or `json`.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Script)]
    pub format: InventoryFormat,
}

/// The forms of `tg output inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum InventoryFormat {
    /// The dynamic-inventory script protocol (`--list`).
    #[default]
    Script,
    /// A static inventory in YAML (`inventory.yml`).
    Yaml,
    /// A static inventory in JSON (`inventory.json`).
    Json,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Print the whole inventory (Ansible calls this).
    #[arg(long)]
    pub list: bool,
    /// Print one host's variables.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List recorded instances.
    List {
        /// Only addresses matching these (resource or instance addresses).
        addresses: Vec<String>,
    },
    /// Show one recorded instance.
    Show { address: String },
    /// Forget instances without destroying them.
    Rm { addresses: Vec<String> },
    /// Rename a recorded instance (after renaming its block) without recreating it.
    Mv {
        /// The recorded address (`node.old`, `node.old[0]`).
        from: String,
        /// The new address (`node.new`, `node.new[0]`).
        to: String,
    },
    /// Copy the session's state to another backend (a postgres:// URL or a sqlite file).
    Migrate {
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Every pool host: free, leased (by which session, since when) or quarantined.
    List {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Take a broken host out of placement.
    Quarantine {
        /// A host name or `address:port`.
        host: String,
        /// Why (shown by `tg pool list` and in placement errors).
        #[arg(long)]
        reason: String,
    },
    /// Free a host whose session is gone (also ends a quarantine).
    Release {
        /// A host name or `address:port`.
        host: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    pub id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GraphFormat {
    #[default]
    Dot,
    Mermaid,
    /// A picture, drawn by Graphviz `dot` (which must be installed).
    Svg,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// A plan saved with `tg plan -out FILE`: its instances, coloured by planned action.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// `node.edge[0]`, `node.edge[*]`, `node.edge` or a label selector `role=edge`.
    pub target: String,
    /// Print one JSON document of the results (output that is not UTF-8 as base64).
    #[arg(long)]
    pub json: bool,
    /// Run the command on a terminal (interactive shells; one node only).
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// End the command after this long and exit 124, like `timeout(1)` (`30s`, `5m`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Send stdin to every matching node (with several nodes stdin is refused otherwise).
    #[arg(long = "stdin-all")]
    pub stdin_all: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List sessions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a session.
    New { name: String },
    /// Delete a session (it must be destroyed first, unless -destroy or -force).
    Delete {
        name: String,
        /// Forget what it records without destroying it (the objects stay).
        #[arg(long)]
        force: bool,
        /// Destroy what it records first, from state alone (no testbed needed).
        #[arg(long)]
        destroy: bool,
        /// With `-destroy`: do not ask for confirmation.
        #[arg(long = "auto-approve")]
        auto_approve: bool,
    },
    /// Show a session.
    Show {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write a `tg serve` session's testbed (`OWNER/NAME`), to review and re-apply.
    Export {
        name: String,
        /// Write the document to FILE (default: stdout); an existing directory
        /// gets the document and the catalog's files.
        #[arg(short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// The server's data dir (its `-data-dir`).
        #[arg(long = "data-dir", value_name = "DIR", default_value = ".tg/serve")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:7676", value_name = "ADDR:PORT")]
    pub listen: String,
    /// One `TOKEN USER [admin]` per line, `#` comments; reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// A directory of `*.tg.hcl` with the profiles API sessions may use.
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// Where session folders and the default state live.
    #[arg(long, value_name = "DIR", default_value = ".tg/serve")]
    pub data_dir: PathBuf,
    /// The platform of API sessions' nodes.
    #[arg(long, default_value = "netns")]
    pub platform: String,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The node: its hostname (`edge-0`) or its address (`node.edge[0]`).
    pub target: String,
    /// The command and its arguments (after `--`); none opens a shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    pub host: String,
    pub port: u16,
}

/// `-parallelism`: a whole number of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// Rewrite Terraform-style `-flag` / `-flag=value` into `--flag`, up to a
/// bare `--` (what follows it belongs to the user's command).
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(a);
            continue;
        }
        if a == "--" {
            passthrough = true;
            out.push(a);
            continue;
        }
        let bytes = a.as_bytes();
        if bytes.len() > 2
            && bytes[0] == b'-'
            && bytes[1] != b'-'
            && bytes[1].is_ascii_alphabetic()
            && bytes[2] != b'='
        {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &[&str]) -> Vec<String> {
        normalize_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            n(&["tg", "plan", "-out", "p", "-refresh=false", "-h", "--json"]),
            [
                "tg",
                "plan",
                "--out",
                "p",
                "--refresh=false",
                "-h",
                "--json"
            ]
        );
        assert_eq!(
            n(&["tg", "exec", "node.a", "--", "ls", "-la"]),
            ["tg", "exec", "node.a", "--", "ls", "-la"]
        );
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(n(&["tg", "plan", "-refresh=false", "-var", "a=1"])).unwrap();
        match c.command {
            Command::Plan(p) => {
                assert!(!p.options.refresh);
                assert_eq!(p.options.vars.vars, ["a=1"]);
            }
            _ => panic!(),
        }
    }
}
