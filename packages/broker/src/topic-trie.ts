// Topic exchange matching on a trie of binding-key words, walked once per message instead of one
// regex per binding. RabbitMQ's rules: words split on ".", "*" is exactly one word, "#" is zero or
// more words, and the empty key has zero words.

class TrieNode {
  readonly children = new Map<string, TrieNode>();
  readonly destinations = new Set<string>();
}

export function topicWords(key: string): string[] {
  return key === "" ? [] : key.split(".");
}

export class TopicTrie {
  private readonly root = new TrieNode();

  add(bindingKey: string, destination: string): void {
    let node = this.root;
    for (const word of topicWords(bindingKey)) {
      let child = node.children.get(word);
      if (child === undefined) {
        child = new TrieNode();
        node.children.set(word, child);
      }
      node = child;
    }
    node.destinations.add(destination);
  }

  remove(bindingKey: string, destination: string): void {
    const words = topicWords(bindingKey);
    const path: TrieNode[] = [this.root];
    let node = this.root;
    for (const word of words) {
      const child = node.children.get(word);
      if (child === undefined) return;
      path.push(child);
      node = child;
    }
    node.destinations.delete(destination);
    // Prune nodes left without bindings or children so the trie does not grow with churn.
    for (let i = words.length; i > 0; i--) {
      const n = path[i];
      const parent = path[i - 1];
      const word = words[i - 1];
      if (n === undefined || parent === undefined || word === undefined) break;
      if (n.destinations.size > 0 || n.children.size > 0) break;
      parent.children.delete(word);
    }
  }

  match(routingKey: string, out: Set<string>): void {
    this.walk(this.root, topicWords(routingKey), 0, out);
  }

  private walk(node: TrieNode, words: string[], i: number, out: Set<string>): void {
    const hash = node.children.get("#");
    if (i === words.length) {
      for (const d of node.destinations) out.add(d);
      // "#" may match zero words at the end.
      if (hash !== undefined) this.walk(hash, words, i, out);
      return;
    }
    const word = words[i] as string;
    const exact = node.children.get(word);
    if (exact !== undefined && word !== "*" && word !== "#") this.walk(exact, words, i + 1, out);
    const star = node.children.get("*");
    if (star !== undefined) this.walk(star, words, i + 1, out);
    if (hash !== undefined) {
      for (let j = i; j <= words.length; j++) this.walk(hash, words, j, out);
    }
  }
}
