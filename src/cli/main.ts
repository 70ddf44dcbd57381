/**
 * `berth`: docker's commands, flags, output and exit codes, over the Engine API only.
 * Command modules are imported lazily, when their command runs.
 */
import { Command, CommanderError } from './args.js';
import { Cli, collect, errorMessage, type GlobalOptions, PROG, StatusError } from './cli.js';

type Handler = (cli: Cli, ...args: any[]) => Promise<void>;
type Loader = () => Promise<Record<string, unknown>>;

const mods: Record<string, Loader> = {
  run: () => import('./commands/run.js'),
  container: () => import('./commands/container.js'),
  image: () => import('./commands/image.js'),
  network: () => import('./commands/network.js'),
  system: () => import('./commands/system.js'),
  build: () => import('./commands/build.js'),
};

let current: Cli | undefined;

/** An action that loads `mod` and calls `fn(cli, ...positionals, opts)`. */
function act(mod: keyof typeof mods, fn: string) {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.opts();
    const positional = args.slice(0, -2);
    const m = await mods[mod]!();
    const cli = current!;
    await (m[fn] as Handler)(cli, ...positional, opts);
  };
}

function addRun(parent: Command, name = 'run'): void {
  addCreateFlags(
    parent
      .command(name)
      .description('Create and run a new container from an image')
      .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
      .passThroughOptions()
      .option('-d, --detach', 'Run container in background and print container ID')
      .option('--detach-keys <string>', 'Override the key sequence for detaching a container')
      .option('--sig-proxy', 'Proxy received signals to the process (default true)')
      .option('--no-sig-proxy', 'Do not proxy signals')
      .argument('<image>')
      .argument('[command...]'),
  ).action(act('run', 'run'));
}

function addCreateFlags(cmd: Command): Command {
  // Defined in createopts.ts; loaded eagerly only for run/create (it holds no heavy imports).
  return createOptionsAdder!(cmd);
}

let createOptionsAdder: ((c: Command) => Command) | undefined;

function addCreate(parent: Command): void {
  addCreateFlags(
    parent
      .command('create')
      .description('Create a new container')
      .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
      .passThroughOptions()
      .argument('<image>')
      .argument('[command...]'),
  ).action(act('run', 'create'));
}

function addContainerCommands(p: Command, top: boolean): void {
  const c = (name: string, desc: string) => p.command(name).description(desc);
  const ps = top ? c('ps', 'List containers') : c('ls', 'List containers').aliases(['ps', 'list']);
  ps.option('-a, --all', 'Show all containers (default shows just running)')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <string>', 'Format output using a custom template')
    .option('-n, --last <int>', 'Show n last created containers (includes all states)')
    .option('-l, --latest', 'Show the latest created container (includes all states)')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only display container IDs')
    .option('-s, --size', 'Display total file sizes')
    .action(act('container', 'ps'));
  if (!top) {
    c('inspect', 'Display detailed information on one or more containers')
      .option('-f, --format <string>', 'Format output using a custom template')
      .option('-s, --size', 'Display total file sizes')
      .argument('<container...>')
      .action(act('container', 'containerInspect'));
    c('prune', 'Remove all stopped containers')
      .option('-f, --force', 'Do not prompt for confirmation')
      .option('--filter <filter>', 'Provide filter values', collect)
      .action(act('container', 'prune'));
  }
  addRun(p);
  addCreate(p);
  c('start', 'Start one or more stopped containers')
    .option('-a, --attach', 'Attach STDOUT/STDERR and forward signals')
    .option('-i, --interactive', "Attach container's STDIN")
    .option('--detach-keys <string>', 'Override the key sequence for detaching a container')
    .option('--no-sig-proxy', 'Do not proxy signals')
    .argument('<container...>')
    .action(act('run', 'start'));
  c('stop', 'Stop one or more running containers')
    .option('-s, --signal <string>', 'Signal to send to the container')
    .option('-t, --timeout <int>', 'Seconds to wait before killing the container')
    .option('--time <int>', 'Seconds to wait before killing the container (deprecated)')
    .argument('<container...>')
    .action(act('container', 'stop'));
  c('restart', 'Restart one or more containers')
    .option('-s, --signal <string>', 'Signal to send to the container')
    .option('-t, --timeout <int>', 'Seconds to wait before killing the container')
    .option('--time <int>', 'Seconds to wait before killing the container (deprecated)')
    .argument('<container...>')
    .action(act('container', 'restart'));
  c('kill', 'Kill one or more running containers')
    .option('-s, --signal <string>', 'Signal to send to the container')
    .argument('<container...>')
    .action(act('container', 'kill'));
  (top
    ? c('rm', 'Remove one or more containers')
    : c('rm', 'Remove one or more containers').aliases(['remove'])
  )
    .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .option('-l, --link', 'Remove the specified link')
    .argument('<container...>')
    .action(act('container', 'rm'));
  c('logs', 'Fetch the logs of a container')
    .option('-f, --follow', 'Follow log output')
    .option('--since <string>', 'Show logs since timestamp or relative')
    .option('--until <string>', 'Show logs before a timestamp or relative')
    .option('-t, --timestamps', 'Show timestamps')
    .option('-n, --tail <string>', 'Number of lines to show from the end of the logs', 'all')
    .option('--details', 'Show extra details provided to logs')
    .argument('<container>')
    .action(act('container', 'logs'));
  c('exec', 'Execute a command in a running container')
    .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
    .passThroughOptions()
    .option('-d, --detach', 'Detached mode: run command in the background')
    .option('--detach-keys <string>', 'Override the key sequence for detaching a container')
    .option('-e, --env <list>', 'Set environment variables', collect)
    .option('--env-file <list>', 'Read in a file of environment variables', collect)
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('--privileged', 'Give extended privileges to the command')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-u, --user <string>', 'Username or UID (format: "<name|uid>[:<group|gid>]")')
    .option('-w, --workdir <string>', 'Working directory inside the container')
    .argument('<container>')
    .argument('<command...>')
    .action(act('run', 'exec'));
  c('attach', 'Attach local standard input, output, and error streams to a running container')
    .option('--detach-keys <string>', 'Override the key sequence for detaching a container')
    .option('--no-stdin', 'Do not attach STDIN')
    .option('--sig-proxy', 'Proxy all received signals to the process (default true)')
    .option('--no-sig-proxy', 'Do not proxy signals')
    .argument('<container>')
    .action(act('run', 'attach'));
  c('wait', 'Block until one or more containers stop, then print their exit codes')
    .argument('<container...>')
    .action(act('run', 'wait'));
  c('top', 'Display the running processes of a container')
    .argument('<container>')
    .argument('[ps_options...]')
    .action(act('container', 'top'));
  c('pause', 'Pause all processes within one or more containers')
    .argument('<container...>')
    .action(act('container', 'pause'));
  c('unpause', 'Unpause all processes within one or more containers')
    .argument('<container...>')
    .action(act('container', 'unpause'));
  c('rename', 'Rename a container')
    .argument('<container>')
    .argument('<new_name>')
    .action(act('container', 'rename'));
  c('port', 'List port mappings or a specific mapping for the container')
    .argument('<container>')
    .argument('[private_port]')
    .action(act('container', 'port'));
  c('diff', "Inspect changes to files or directories on a container's filesystem")
    .argument('<container>')
    .action(act('container', 'diff'));
  c('export', "Export a container's filesystem as a tar archive")
    .option('-o, --output <string>', 'Write to a file, instead of STDOUT')
    .argument('<container>')
    .action(act('container', 'exportContainer'));
  c('commit', "Create a new image from a container's changes")
    .option('-a, --author <string>', 'Author')
    .option('-c, --change <list>', 'Apply Dockerfile instruction to the created image', collect)
    .option('-m, --message <string>', 'Commit message')
    .option('-p, --pause', 'Pause container during commit (default true)')
    .option('--no-pause', 'Do not pause the container during commit')
    .argument('<container>')
    .argument('[repository]')
    .action(act('container', 'commit'));
  c('cp', 'Copy files/folders between a container and the local filesystem')
    .option('-a, --archive', 'Archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'Always follow symbol link in SRC_PATH')
    .option('-q, --quiet', 'Suppress progress output during copy')
    .argument('<src>')
    .argument('<dest>')
    .action(act('container', 'cp'));
}

function addBuild(parent: Command): void {
  parent
    .command('build')
    .description('Build an image from a Dockerfile')
    .usage('[OPTIONS] PATH | -')
    .option('--build-arg <list>', 'Set build-time variables', collect)
    .option('--cache-from <strings>', 'Images to consider as cache sources', collect)
    .option('-f, --file <string>', "Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    .option('--iidfile <string>', 'Write the image ID to the file')
    .option('--label <list>', 'Set metadata for an image', collect)
    .option('--network <string>', 'Set the networking mode for the RUN instructions during build')
    .option('--no-cache', 'Do not use cache when building the image')
    .option('--progress <string>', 'Set type of progress output (auto, plain, tty)')
    .option('--pull', 'Always attempt to pull a newer version of the image')
    .option('-q, --quiet', 'Suppress the build output and print image ID on success')
    .option(
      '--secret <stringArray>',
      'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")',
      collect,
    )
    .option('-t, --tag <list>', "Name and optionally a tag in the 'name:tag' format", collect)
    .option('--target <string>', 'Set the target build stage to build.')
    .argument('<path>')
    .action(act('build', 'build'));
}

function addImageCommands(p: Command, top: boolean): void {
  const c = (name: string, desc: string) => p.command(name).description(desc);
  addBuild(p);
  const ls = top ? c('images', 'List images') : c('ls', 'List images').aliases(['list']);
  ls.option('-a, --all', 'Show all images (default hides intermediate images)')
    .option('--digests', 'Show digests')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <string>', 'Format output using a custom template')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only show image IDs')
    .option('--tree', 'List multi-platform images as a tree (EXPERIMENTAL)')
    .argument('[repository]')
    .action(act('image', 'images'));
  if (!top) {
    c('inspect', 'Display detailed information on one or more images')
      .option('-f, --format <string>', 'Format output using a custom template')
      .option('--platform <string>', 'Inspect a specific platform of the multi-platform image')
      .argument('<image...>')
      .action(act('image', 'imageInspect'));
    c('prune', 'Remove unused images')
      .option('-a, --all', 'Remove all unused images, not just dangling ones')
      .option('-f, --force', 'Do not prompt for confirmation')
      .option('--filter <filter>', 'Provide filter values', collect)
      .action(act('image', 'imagePrune'));
  }
  (top
    ? c('rmi', 'Remove one or more images')
    : c('rm', 'Remove one or more images').aliases(['rmi', 'remove'])
  )
    .option('-f, --force', 'Force removal of the image')
    .option('--no-prune', 'Do not delete untagged parents')
    .argument('<image...>')
    .action(act('image', 'rmi'));
  c('tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .usage('SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
    .argument('<source_image>')
    .argument('<target_image>')
    .action(act('image', 'tag'));
  c('history', 'Show the history of an image')
    .option('--format <string>', 'Format output using a custom template')
    .option('-H, --human', 'Print sizes and dates in human readable format (default true)')
    .option('--no-human', 'Print raw sizes and dates')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only show image IDs')
    .argument('<image>')
    .action(act('image', 'history'));
  c('import', 'Import the contents from a tarball to create a filesystem image')
    .option('-c, --change <list>', 'Apply Dockerfile instruction to the created image', collect)
    .option('-m, --message <string>', 'Set commit message for imported image')
    .option('--platform <string>', 'Set platform if server is multi-platform capable')
    .argument('<file>')
    .argument('[repository]')
    .action(act('image', 'importImage'));
  c('load', 'Load an image from a tar archive or STDIN')
    .option('-i, --input <string>', 'Read from tar archive file, instead of STDIN')
    .option('-q, --quiet', 'Suppress the load output')
    .option('--platform <list>', 'Load only the given platform(s)', collect)
    .action(act('image', 'load'));
  c('save', 'Save one or more images to a tar archive (streamed to STDOUT by default)')
    .option('-o, --output <string>', 'Write to a file, instead of STDOUT')
    .option('--platform <list>', 'Save only the given platform(s)', collect)
    .argument('<image...>')
    .action(act('image', 'save'));
  c('pull', 'Download an image from a registry')
    .option('-a, --all-tags', 'Download all tagged images in the repository')
    .option('--platform <string>', 'Set platform if server is multi-platform capable')
    .option('-q, --quiet', 'Suppress verbose output')
    .option('--disable-content-trust', 'Skip image verification (default true)')
    .argument('<name>')
    .action(act('image', 'pull'));
  c('push', 'Upload an image to a registry')
    .option('-a, --all-tags', 'Push all tags of an image to the repository')
    .option('--platform <string>', 'Push a platform-specific manifest')
    .option('-q, --quiet', 'Suppress verbose output')
    .option('--compression <string>', 'Layer compression: gzip or zstd (an OCI image) (default gzip)')
    .option('--disable-content-trust', 'Skip image signing (default true)')
    .argument('<name>')
    .action(act('image', 'push'));
}

function addNetworkCommands(program: Command): void {
  const n = program.command('network').description('Manage networks');
  n.command('create')
    .description('Create a network')
    .option('-d, --driver <string>', 'Driver to manage the Network', 'bridge')
    .option('--subnet <list>', 'Subnet in CIDR format that represents a network segment', collect)
    .option('--ip-range <list>', 'Allocate container ip from a sub-range', collect)
    .option('--gateway <list>', 'IPv4 or IPv6 Gateway for the master subnet', collect)
    .option('--aux-address <map>', 'Auxiliary IPv4 or IPv6 addresses used by Network driver', collect)
    .option('--ipam-driver <string>', 'IP Address Management Driver', 'default')
    .option('--ipam-opt <map>', 'Set IPAM driver specific options', collect)
    .option('-o, --opt <map>', 'Set driver specific options', collect)
    .option('--label <list>', 'Set metadata on a network', collect)
    .option('--internal', 'Restrict external access to the network')
    .option('--attachable', 'Enable manual container attachment')
    .option('--ipv6', 'Enable or disable IPv6 networking')
    .option('--ipv4', 'Enable or disable IPv4 address assignment')
    .option('--no-ipv4', 'Disable IPv4 address assignment')
    .option('--scope <string>', "Control the network's scope")
    .argument('<name>')
    .action(act('network', 'networkCreate'));
  n.command('ls')
    .aliases(['list'])
    .description('List networks')
    .option('-f, --filter <filter>', 'Provide filter values', collect)
    .option('--format <string>', 'Format output using a custom template')
    .option('--no-trunc', 'Do not truncate the output')
    .option('-q, --quiet', 'Only display network IDs')
    .action(act('network', 'networkLs'));
  n.command('inspect')
    .description('Display detailed information on one or more networks')
    .option('-f, --format <string>', 'Format output using a custom template')
    .option('-v, --verbose', 'Verbose output for diagnostics')
    .argument('<network...>')
    .action(act('network', 'networkInspect'));
  n.command('rm')
    .aliases(['remove'])
    .description('Remove one or more networks')
    .option('-f, --force', 'Do not error if the network does not exist')
    .argument('<network...>')
    .action(act('network', 'networkRm'));
  n.command('prune')
    .description('Remove all unused networks')
    .option('-f, --force', 'Do not prompt for confirmation')
    .option('--filter <filter>', 'Provide filter values', collect)
    .action(act('network', 'networkPrune'));
  n.command('connect')
    .description('Connect a container to a network')
    .option('--alias <list>', 'Add network-scoped alias for the container', collect)
    .option('--driver-opt <list>', 'driver options for the network', collect)
    .option('--ip <string>', 'IPv4 address (e.g., "172.30.100.104")')
    .option('--ip6 <string>', 'IPv6 address (e.g., "2001:db8::33")')
    .option('--link <list>', 'Add link to another container', collect)
    .option('--link-local-ip <list>', 'Add a link-local address for the container', collect)
    .argument('<network>')
    .argument('<container>')
    .action(act('network', 'networkConnect'));
  n.command('disconnect')
    .description('Disconnect a container from a network')
    .option('-f, --force', 'Force the container to disconnect from a network')
    .argument('<network>')
    .argument('<container>')
    .action(act('network', 'networkDisconnect'));
}

function addVolumeCommands(program: Command): void {
  const v = program.command('volume').description('Manage volumes');
  v.command('create')
    .description('Create a volume')
    .option('-d, --driver <string>', 'Specify volume driver name', 'local')
    .option('--name <string>', 'Specify volume name')
    .option('--label <list>', 'Set metadata for a volume', collect)
    .option('-o, --opt <map>', 'Set driver specific options', collect)
    .argument('[volume]')
    .action(act('network', 'volumeCreate'));
  v.command('ls')
    .aliases(['list'])
    .description('List volumes')
    .option('-f, --filter <filter>', 'Provide filter values', collect)
    .option('--format <string>', 'Format output using a custom template')
    .option('-q, --quiet', 'Only display volume names')
    .option('--cluster', 'Display only cluster volumes, and use cluster volume list formatting')
    .action(act('network', 'volumeLs'));
  v.command('inspect')
    .description('Display detailed information on one or more volumes')
    .option('-f, --format <string>', 'Format output using a custom template')
    .argument('<volume...>')
    .action(act('network', 'volumeInspect'));
  v.command('rm')
    .aliases(['remove'])
    .description('Remove one or more volumes')
    .option('-f, --force', 'Force the removal of one or more volumes')
    .argument('<volume...>')
    .action(act('network', 'volumeRm'));
  v.command('prune')
    .description('Remove unused local volumes')
    .option('-a, --all', 'Remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .option('--filter <filter>', 'Provide filter values', collect)
    .action(act('network', 'volumePrune'));
}

function build(): Command {
  const program = new Command(PROG)
    .usage('[OPTIONS] COMMAND')
    .description('A self-sufficient runtime for containers')
    .option('-H, --host <list>', 'Daemon socket to connect to', collect)
    .option('--tls', 'Use TLS; implied by --tlsverify')
    .option('--tlsverify', 'Use TLS and verify the remote')
    .option('--tlscacert <string>', 'Trust certs signed only by this CA')
    .option('--tlscert <string>', 'Path to TLS certificate file')
    .option('--tlskey <string>', 'Path to TLS key file')
    .option('--config <string>', 'Location of client config files')
    .option('-c, --context <string>', 'Name of the context to use')
    .option('-D, --debug', 'Enable debug mode')
    .option('-l, --log-level <string>', 'Set the logging level')
    .option('-v, --version', 'Print version information and quit');

  addContainerCommands(program, true);
  addImageCommands(program, true);
  program
    .command('inspect')
    .description('Return low-level information on Docker objects')
    .option('-f, --format <string>', 'Format output using a custom template')
    .option('-s, --size', 'Display total file sizes if the type is container')
    .option('--type <string>', 'Only inspect objects of the given type')
    .argument('<name...>')
    .action(act('container', 'inspect'));
  addContainerCommands(program.command('container').description('Manage containers'), false);
  addImageCommands(program.command('image').description('Manage images'), false);
  addNetworkCommands(program);
  addVolumeCommands(program);
  program
    .command('version')
    .description('Show the Docker version information')
    .option('-f, --format <string>', 'Format output using a custom template')
    .action(act('system', 'version'));
  const infoCmd = (p: Command) =>
    p
      .command('info')
      .description('Display system-wide information')
      .option('-f, --format <string>', 'Format output using a custom template')
      .action(act('system', 'info'));
  infoCmd(program);
  const eventsCmd = (p: Command) =>
    p
      .command('events')
      .description('Get real time events from the server')
      .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
      .option('--format <string>', 'Format output using a custom template')
      .option('--since <string>', 'Show all events created since timestamp')
      .option('--until <string>', 'Stream events until this timestamp')
      .action(act('system', 'events'));
  eventsCmd(program);
  const sys = program.command('system').description('Manage Docker');
  infoCmd(sys);
  eventsCmd(sys);
  sys
    .command('df')
    .description('Show docker disk usage')
    .option('--format <string>', 'Format output using a custom template')
    .option('-v, --verbose', 'Show detailed information on space usage')
    .action(act('system', 'df'));
  program
    .command('login')
    .description('Authenticate to a registry')
    .option('-u, --username <string>', 'Username')
    .option('-p, --password <string>', 'Password or Personal Access Token (PAT)')
    .option('--password-stdin', 'Take the Password or Personal Access Token (PAT) from stdin')
    .argument('[server]')
    .action(act('system', 'login'));
  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[server]')
    .action(act('system', 'logout'));
  return program;
}

function commandPath(cmd: Command | undefined): string {
  const parts: string[] = [];
  for (let c: Command | null | undefined = cmd; c; c = c.parent) parts.unshift(c.name());
  return parts.join(' ');
}

/** docker's usage line: `berth rm [OPTIONS] CONTAINER [CONTAINER...]`. */
function usageLine(cmd: Command): string {
  const custom = cmd.usage();
  if (custom && custom !== '[options]' && !custom.startsWith('[options] '))
    return `${commandPath(cmd)} ${custom}`;
  const parts: string[] = [];
  if (cmd.options.length > 0) parts.push('[OPTIONS]');
  for (const a of cmd.registeredArguments) {
    const n = a.name().toUpperCase();
    if (a.variadic) parts.push(a.required ? `${n} [${n}...]` : `[${n}...]`);
    else parts.push(a.required ? n : `[${n}]`);
  }
  if (cmd.commands.length) parts.push('COMMAND');
  return [commandPath(cmd), ...parts].join(' ');
}

/** Turns commander's parse errors into docker's wording and exit codes. */
function usageFailure(err: CommanderError, cmd: Command): number {
  const msg = err.message.replace(/^error: /, '');
  const name = commandPath(cmd);
  const usage = `Usage:  ${usageLine(cmd)}`;
  let m: RegExpExecArray | null = /^unknown option '([^']+)'/.exec(msg);
  if (m) {
    const flag = m[1]!.split('=')[0]!;
    const text = flag.startsWith('--')
      ? `unknown flag: ${flag}`
      : `unknown shorthand flag: '${flag.slice(1, 2)}' in ${flag}`;
    process.stderr.write(`${text}\n\n${usage}\n\nRun '${name} --help' for more information\n`);
    return 125;
  }
  m = /^option '([^']+)' argument missing/.exec(msg);
  if (m) {
    const flags = m[1]!.split(/[ ,]+/).filter((f) => f.startsWith('-'));
    const short = flags.find((f) => !f.startsWith('--'));
    const text = short
      ? `flag needs an argument: '${short.slice(1)}' in ${short}`
      : `flag needs an argument: ${flags[0]}`;
    process.stderr.write(`${text}\n\n${usage}\n\nRun '${name} --help' for more information\n`);
    return 125;
  }
  if (/^missing required argument|^too many arguments/.test(msg)) {
    const args = cmd.registeredArguments;
    const required = args.filter((a) => a.required).length;
    const variadic = args.some((a) => a.variadic);
    const optional = args.some((a) => !a.required);
    let text: string;
    let verb = 'Run';
    if (args.length === 0) text = 'accepts no arguments';
    else if (msg.startsWith('too many') && optional && !variadic)
      text = `requires at most ${args.length} argument${args.length === 1 ? '' : 's'}`;
    else if (variadic || optional) {
      text = `requires at least ${required} argument${required === 1 ? '' : 's'}`;
      verb = 'See';
    } else text = `requires ${required} argument${required === 1 ? '' : 's'}`;
    process.stderr.write(
      `${PROG}: '${name}' ${text}\n\n${usage}\n\n${verb} '${name} --help' for more information\n`,
    );
    return 1;
  }
  m = /^unknown command '([^']+)'/.exec(msg);
  if (m) {
    process.stderr.write(`${PROG}: '${m[1]}' is not a ${PROG} command.\nSee '${PROG} --help'\n`);
    return 1;
  }
  process.stderr.write(msg + '\n');
  return err.exitCode === 0 ? 0 : 125;
}

let lastCommand: Command | undefined;

export async function main(argv: string[]): Promise<number> {
  const createopts = await import('./commands/createopts.js');
  createOptionsAdder = createopts.addCreateOptions;
  const program = build();
  program.onAction = (cmd) => {
    lastCommand = cmd;
    current = new Cli(program.opts() as GlobalOptions);
  };
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  if (argv[0] === '-v' || argv[0] === '--version') {
    process.stdout.write(`Berth version 0.1.0, build berth\n`);
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (program.opts().version) {
      process.stdout.write(`Berth version 0.1.0, build berth\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.help' ||
        err.code === 'commander.version'
      )
        return 0;
      return usageFailure(err, err.command ?? lastCommand ?? program);
    }
    if (err instanceof StatusError) {
      if (err.message) process.stderr.write(err.message + '\n');
      return err.status;
    }
    process.stderr.write(errorMessage(err) + '\n');
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// Flush stdout before leaving: pipes may hold pending writes.
if (process.stdout.writableLength > 0) process.stdout.once('drain', () => process.exit(code));
else process.exit(code);
