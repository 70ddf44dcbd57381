/** Every route group of the Engine API; one module per resource. */
import type { Router } from '../router.js';
import { registerArchiveRoutes } from './archive.js';
import { registerAuthRoutes } from './auth.js';
import { registerBuildRoutes } from './build.js';
import { registerContainerRoutes } from './containers.js';
import { registerExecRoutes } from './exec.js';
import { registerImageRoutes } from './images.js';
import { registerNetworkRoutes } from './networks.js';
import { registerSystemRoutes } from './system.js';
import { registerVolumeRoutes } from './volumes.js';

export function registerRoutes(router: Router): void {
  registerSystemRoutes(router);
  registerContainerRoutes(router);
  registerExecRoutes(router);
  registerImageRoutes(router);
  registerNetworkRoutes(router);
  registerVolumeRoutes(router);
  registerArchiveRoutes(router);
  registerAuthRoutes(router);
  registerBuildRoutes(router);
}
