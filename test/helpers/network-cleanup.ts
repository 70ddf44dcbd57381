/** Network objects a test daemon may leave: filled in by the networking work. */
export async function cleanupNetwork(_instance: string, _base: string): Promise<void> {}
