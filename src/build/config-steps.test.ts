// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not template literals
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageConfig } from '../images/index.js';
import { applyConfigStep, durationNs } from './config-steps.js';
import { parseDockerfile } from './dockerfile.js';
import { varsOf } from './shell-lex.js';

function apply(lines: string, base: Partial<ImageConfig['config']> = {}): ImageConfig {
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { ...base },
    rootfs: { type: 'layers', diff_ids: [] },
  };
  let cmdSet = false;
  for (const ins of parseDockerfile(`FROM scratch\n${lines}`).stages[0].instructions) {
    const vars = varsOf(config.config.Env ?? []);
    cmdSet = applyConfigStep(ins, {
      config,
      vars,
      escape: '\\',
      shell: config.config.Shell ?? ['/bin/sh', '-c'],
      cmdSet,
    }).cmdSet;
  }
  return config;
}

test('ENV, LABEL, EXPOSE ranges, VOLUME, USER with variables', () => {
  const c = apply(
    'ENV P=8080 U=app\nLABEL a=b "c d"=e\nEXPOSE $P 9000-9001/udp\nVOLUME ["/data"] \nUSER ${U}:0\n',
  );
  assert.deepEqual(c.config.Env, ['P=8080', 'U=app']);
  assert.deepEqual(c.config.Labels, { a: 'b', 'c d': 'e' });
  assert.deepEqual(Object.keys(c.config.ExposedPorts ?? {}).sort(), ['8080/tcp', '9000/udp', '9001/udp']);
  assert.deepEqual(c.config.Volumes, { '/data': {} });
  assert.equal(c.config.User, 'app:0');
});

test('CMD/ENTRYPOINT/SHELL: shell and exec form, ENTRYPOINT drops an inherited CMD', () => {
  const inherited = apply('ENTRYPOINT ["/bin/app"]\n', { Cmd: ['sh'] });
  assert.deepEqual(inherited.config.Entrypoint, ['/bin/app']);
  assert.equal(inherited.config.Cmd, null);
  const own = apply('CMD ["--help"]\nENTRYPOINT /bin/app -v\n');
  assert.deepEqual(own.config.Cmd, ['--help']);
  assert.deepEqual(own.config.Entrypoint, ['/bin/sh', '-c', '/bin/app -v']);
  const shell = apply('SHELL ["/bin/bash", "-ec"]\nCMD echo hi\n');
  assert.deepEqual(shell.config.Cmd, ['/bin/bash', '-ec', 'echo hi']);
});

test('HEALTHCHECK and ONBUILD', () => {
  const c = apply(
    'HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f http://localhost/\nONBUILD run echo child\n',
  );
  assert.deepEqual(c.config.Healthcheck, {
    Test: ['CMD-SHELL', 'curl -f http://localhost/'],
    Interval: 90e9,
    Timeout: 5e8,
    Retries: 3,
  });
  assert.deepEqual(c.config.OnBuild, ['RUN echo child']);
  assert.deepEqual(apply('HEALTHCHECK NONE\n').config.Healthcheck, { Test: ['NONE'] });
  assert.throws(() => durationNs('interval', '5 s'), /invalid duration/);
});
