/** Docker-style generated names (`adjective_scientist`) and the name rule Docker enforces. */
import { randomInt } from 'node:crypto';
import { invalid } from '../util/errors.js';

const LEFT = ['admiring', 'agitated', 'amazing', 'blissful', 'bold', 'brave', 'busy', 'clever', 'cool', 'dazzling', 'eager', 'ecstatic', 'elegant', 'epic', 'festive', 'focused', 'friendly', 'gallant', 'gifted', 'happy', 'hopeful', 'jolly', 'keen', 'kind', 'loving', 'lucid', 'magical', 'modest', 'nifty', 'nostalgic', 'optimistic', 'peaceful', 'pensive', 'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'trusting', 'upbeat', 'vibrant', 'wizardly', 'youthful', 'zealous'];
const RIGHT = ['albattani', 'archimedes', 'babbage', 'bohr', 'curie', 'darwin', 'dijkstra', 'einstein', 'euclid', 'fermat', 'feynman', 'galileo', 'gauss', 'hopper', 'hypatia', 'johnson', 'kepler', 'knuth', 'lamport', 'lovelace', 'mayer', 'meitner', 'newton', 'noether', 'pascal', 'ritchie', 'shannon', 'tesla', 'thompson', 'torvalds', 'turing', 'wozniak', 'yalow'];

export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; ; i++) {
    const n = `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}${i > 5 ? randomInt(10) : ''}`;
    if (!taken(`/${n}`)) return n;
  }
}

/** Returns the stored form (`/name`) or throws Docker's 400. */
export function validateName(name: string): string {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(bare)) throw invalid(`Invalid container name (${bare}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return `/${bare}`;
}
