import type { Command } from 'commander';
import { UsageError } from './options.ts';

/** Registers `kairos completion <shell>`: a completion script made from the commands themselves. */
export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish')
    .description(
      'print a shell completion script: `source <(kairos completion bash)` (or zsh), `kairos completion fish | source`',
    )
    .action((shell: string) => {
      const tree = commandTree(program);
      if (shell === 'bash') process.stdout.write(bashScript(tree));
      else if (shell === 'zsh')
        process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashScript(tree)}`);
      else if (shell === 'fish') process.stdout.write(fishScript(tree));
      else throw new UsageError(`completion: expected bash, zsh or fish, got ${shell}`);
    });
}

/** Each command path (`''`, `'jobs'`, `'jobs list'`) with its subcommands and its options. */
export interface CommandNode {
  path: string;
  commands: string[];
  options: string[];
  /** Options that take a value: the word after them is not a command. */
  valued: string[];
}

export function commandTree(program: Command): CommandNode[] {
  const nodes: CommandNode[] = [];
  const visit = (command: Command, path: string, inherited: Command['options']) => {
    const options = [...inherited, ...command.options];
    nodes.push({
      path,
      commands: command.commands.map((c) => c.name()),
      options: options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)),
      valued: options
        .filter((o) => o.required || o.optional)
        .flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)),
    });
    for (const sub of command.commands)
      visit(sub, path ? `${path} ${sub.name()}` : sub.name(), program.options);
  };
  visit(program, '', []);
  return nodes;
}

function bashScript(tree: CommandNode[]): string {
  const cases = tree
    .map((n) => `    "${n.path}") commands="${n.commands.join(' ')}"; options="${n.options.join(' ')}" ;;`)
    .join('\n');
  const valued = [...new Set(tree.flatMap((n) => n.valued))].join('|');
  const paths = tree.map((n) => `|${n.path}|`).join('');
  return `# kairos completion for bash and zsh: source <(kairos completion bash)
_kairos() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word skip=0 i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$word" in
      ${valued || '--no-such-option'}) skip=1 ;;
      -*) ;;
      *) local next="\${path:+$path }$word"
         case "${paths}" in *"|$next|"*) path="$next" ;; esac ;;
    esac
  done
  local commands="" options=""
  case "$path" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$options" -- "$cur") )
  else
    COMPREPLY=( $(compgen -W "$commands" -- "$cur") )
  fi
}
complete -o default -F _kairos kairos
`;
}

function fishScript(tree: CommandNode[]): string {
  const lines = ['# kairos completion for fish: kairos completion fish | source', 'complete -c kairos -f'];
  for (const node of tree) {
    const words = node.path === '' ? [] : node.path.split(' ');
    // At this path exactly: every word of the path seen, none of its subcommands yet.
    const at =
      words.length === 0
        ? `not __fish_seen_subcommand_from ${tree[0]!.commands.join(' ')}`
        : [
            ...words.map((w) => `__fish_seen_subcommand_from ${w}`),
            ...(node.commands.length ? [`not __fish_seen_subcommand_from ${node.commands.join(' ')}`] : []),
          ].join('; and ');
    if (node.commands.length) lines.push(`complete -c kairos -n '${at}' -a '${node.commands.join(' ')}'`);
    for (const option of node.options.filter((o) => o.startsWith('--')))
      lines.push(`complete -c kairos -n '${at}' -l ${option.slice(2)}`);
  }
  return `${lines.join('\n')}\n`;
}
