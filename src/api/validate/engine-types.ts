/**
 * The Engine API's request bodies as Go types (field names and types as dockerd declares them),
 * for checkGoJson. Only the shapes: what a value means is the services' business.
 */
import {
  any,
  array,
  bool,
  type GoType,
  int,
  int64,
  map,
  set,
  slice,
  str,
  strslice,
  struct,
  uint16,
  uint32,
  uint64,
} from './go-json.js';

const strings = slice(str);
const labels = map(str);

const healthConfig = struct('HealthConfig', {
  Test: strings,
  Interval: int64,
  Timeout: int64,
  StartPeriod: int64,
  StartInterval: int64,
  Retries: int,
});

/** container.Config: embedded in the create request, so its fields sit at the top. */
const configFields: Record<string, GoType> = {
  Hostname: str,
  Domainname: str,
  User: str,
  AttachStdin: bool,
  AttachStdout: bool,
  AttachStderr: bool,
  ExposedPorts: set,
  Tty: bool,
  OpenStdin: bool,
  StdinOnce: bool,
  Env: strings,
  Cmd: strslice,
  Healthcheck: healthConfig,
  ArgsEscaped: bool,
  Image: str,
  Volumes: set,
  WorkingDir: str,
  Entrypoint: strslice,
  NetworkDisabled: bool,
  MacAddress: str,
  OnBuild: strings,
  Labels: labels,
  StopSignal: str,
  StopTimeout: int,
  Shell: strslice,
};

const throttle = slice(struct('ThrottleDevice', { Path: str, Rate: uint64 }));

/** container.Resources: embedded in HostConfig and the body of /containers/{id}/update. */
const resourceFields: Record<string, GoType> = {
  CpuShares: int64,
  Memory: int64,
  NanoCpus: int64,
  CgroupParent: str,
  BlkioWeight: uint16,
  BlkioWeightDevice: slice(struct('WeightDevice', { Path: str, Weight: uint16 })),
  BlkioDeviceReadBps: throttle,
  BlkioDeviceWriteBps: throttle,
  BlkioDeviceReadIOps: throttle,
  BlkioDeviceWriteIOps: throttle,
  CpuPeriod: int64,
  CpuQuota: int64,
  CpuRealtimePeriod: int64,
  CpuRealtimeRuntime: int64,
  CpusetCpus: str,
  CpusetMems: str,
  Devices: slice(struct('DeviceMapping', { PathOnHost: str, PathInContainer: str, CgroupPermissions: str })),
  DeviceCgroupRules: strings,
  DeviceRequests: slice(
    struct('DeviceRequest', {
      Driver: str,
      Count: int,
      DeviceIDs: strings,
      Capabilities: slice(strings),
      Options: labels,
    }),
  ),
  KernelMemory: int64,
  KernelMemoryTCP: int64,
  MemoryReservation: int64,
  MemorySwap: int64,
  MemorySwappiness: int64,
  OomKillDisable: bool,
  PidsLimit: int64,
  Ulimits: slice(struct('Ulimit', { Name: str, Hard: int64, Soft: int64 })),
  CpuCount: int64,
  CpuPercent: int64,
  IOMaximumIOps: uint64,
  IOMaximumBandwidth: uint64,
};

const restartPolicy = struct('RestartPolicy', { Name: str, MaximumRetryCount: int });
const consoleSize = array(uint64, 2);

const mount = struct('Mount', {
  Type: str,
  Source: str,
  Target: str,
  ReadOnly: bool,
  Consistency: str,
  BindOptions: struct('BindOptions', {
    Propagation: str,
    NonRecursive: bool,
    CreateMountpoint: bool,
    ReadOnlyNonRecursive: bool,
    ReadOnlyForceRecursive: bool,
  }),
  VolumeOptions: struct('VolumeOptions', {
    NoCopy: bool,
    Labels: labels,
    Subpath: str,
    DriverConfig: struct('Driver', { Name: str, Options: labels }),
  }),
  ImageOptions: struct('ImageOptions', { Subpath: str }),
  TmpfsOptions: struct('TmpfsOptions', { SizeBytes: int64, Mode: uint32, Options: slice(strings) }),
});

const hostConfig = struct('HostConfig', {
  Binds: strings,
  ContainerIDFile: str,
  LogConfig: struct('LogConfig', { Type: str, Config: labels }),
  NetworkMode: str,
  PortBindings: map(slice(struct('PortBinding', { HostIp: str, HostPort: str }))),
  RestartPolicy: restartPolicy,
  AutoRemove: bool,
  VolumeDriver: str,
  VolumesFrom: strings,
  ConsoleSize: consoleSize,
  Annotations: labels,
  CapAdd: strslice,
  CapDrop: strslice,
  CgroupnsMode: str,
  Dns: strings,
  DnsOptions: strings,
  DnsSearch: strings,
  ExtraHosts: strings,
  GroupAdd: strings,
  IpcMode: str,
  Cgroup: str,
  Links: strings,
  OomScoreAdj: int,
  PidMode: str,
  Privileged: bool,
  PublishAllPorts: bool,
  ReadonlyRootfs: bool,
  SecurityOpt: strings,
  StorageOpt: labels,
  Tmpfs: labels,
  UTSMode: str,
  UsernsMode: str,
  ShmSize: int64,
  Sysctls: labels,
  Runtime: str,
  Isolation: str,
  ...resourceFields,
  Mounts: slice(mount),
  MaskedPaths: strings,
  ReadonlyPaths: strings,
  Init: bool,
});

export const endpointSettings = struct('EndpointSettings', {
  IPAMConfig: struct('EndpointIPAMConfig', { IPv4Address: str, IPv6Address: str, LinkLocalIPs: strings }),
  Links: strings,
  Aliases: strings,
  DriverOpts: labels,
  GwPriority: int,
  NetworkID: str,
  EndpointID: str,
  Gateway: str,
  IPAddress: str,
  IPPrefixLen: int,
  IPv6Gateway: str,
  GlobalIPv6Address: str,
  GlobalIPv6PrefixLen: int,
  MacAddress: str,
  DNSNames: strings,
});

/** POST /containers/create */
export const createRequest = struct('CreateRequest', {
  ...configFields,
  HostConfig: hostConfig,
  NetworkingConfig: struct('NetworkingConfig', { EndpointsConfig: map(endpointSettings) }),
});

/** POST /commit: the new image's container config. */
export const containerConfig = struct('Config', configFields);

/** POST /containers/{id}/update */
export const updateConfig = struct('UpdateConfig', { ...resourceFields, RestartPolicy: restartPolicy });

/** POST /containers/{id}/exec */
export const execOptions = struct('ExecOptions', {
  User: str,
  Privileged: bool,
  Tty: bool,
  ConsoleSize: consoleSize,
  AttachStdin: bool,
  AttachStderr: bool,
  AttachStdout: bool,
  Detach: bool,
  DetachKeys: str,
  Env: strings,
  WorkingDir: str,
  Cmd: strslice,
});

/** POST /exec/{id}/start */
export const execStartCheck = struct('ExecStartOptions', {
  Detach: bool,
  Tty: bool,
  ConsoleSize: consoleSize,
});

/** POST /networks/create */
export const networkCreateRequest = struct('CreateRequest', {
  Name: str,
  CheckDuplicate: bool,
  Driver: str,
  Scope: str,
  EnableIPv4: bool,
  EnableIPv6: bool,
  IPAM: struct('IPAM', {
    Driver: str,
    Options: labels,
    Config: slice(
      struct('IPAMConfig', { Subnet: str, IPRange: str, Gateway: str, AuxiliaryAddresses: labels }),
    ),
  }),
  Internal: bool,
  Attachable: bool,
  Ingress: bool,
  ConfigOnly: bool,
  ConfigFrom: struct('ConfigReference', { Network: str }),
  Options: labels,
  Labels: labels,
});

/** POST /networks/{id}/connect */
export const networkConnect = struct('ConnectOptions', { Container: str, EndpointConfig: endpointSettings });

/** POST /networks/{id}/disconnect */
export const networkDisconnect = struct('DisconnectOptions', { Container: str, Force: bool });

/** POST /volumes/create */
export const volumeCreate = struct('CreateOptions', {
  Name: str,
  Driver: str,
  DriverOpts: labels,
  Labels: labels,
  ClusterVolumeSpec: any,
});
