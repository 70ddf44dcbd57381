/** This machine's platform in the Go names that images, registries and the API use. */
const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** Node's `process.arch` as GOARCH (`x64` → `amd64`). */
export function goArch(arch: string = process.arch): string {
  return GOARCH[arch] ?? arch;
}
