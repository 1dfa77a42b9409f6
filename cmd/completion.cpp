// hookctl completion: print a bash, zsh or fish completion script generated from the command
// tree itself (subcommands, options, their value choices and file arguments), so the scripts
// follow every command and option as it is registered. completions/ holds their output;
// `cmake --build BUILD --target regen-completions` rewrites it.
#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/http/config.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

// What the value of an option or a positional argument completes to: nothing, a path, one
// of the option's choices, or a target name from the config file (read when completing).
enum class ValueKind { none, file, directory, target };

struct OptionSpec {
    std::vector<std::string> names; // as typed: "-H", "--header"
    std::string description;
    bool takes_value = false;
    std::string value_name; // FILE, SCHEME, ... (for zsh's message)
    std::vector<std::string> choices;
    bool list = false; // choices may be joined with commas: --status failed,dead
    ValueKind kind = ValueKind::none;
    bool repeatable = false;
};

struct PositionalSpec {
    std::string name;
    std::vector<std::string> choices;
    ValueKind kind = ValueKind::none;
    bool many = false;
};

struct CommandSpec {
    std::vector<std::string> path; // {"hookctl", "events", "list"}
    std::string description;
    std::vector<OptionSpec> options; // its own and, as global flags fall through, its parents'
    std::vector<PositionalSpec> positionals;
    std::vector<CommandSpec> children;

    std::string joined(std::string_view separator) const {
        std::string out;
        for (const auto& part : path) {
            out += out.empty() ? "" : std::string(separator);
            out += part;
        }
        return out;
    }
};

// The choices of a CLI::IsMember check, read from its "{a,b,c}" description (map checks show
// "{a->x,...}": the keys are what a user types).
std::vector<std::string> choices_from_type_name(const std::string& type_name) {
    std::vector<std::string> out;
    auto open = type_name.find('{');
    auto close = type_name.find('}', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos) {
        return out;
    }
    std::stringstream items(type_name.substr(open + 1, close - open - 1));
    std::string item;
    while (std::getline(items, item, ',')) {
        if (auto arrow = item.find("->"); arrow != std::string::npos) {
            item.resize(arrow);
        }
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

// Whether a value named `type_name` (FILE, PATH, DIR, DB, ARCHIVE, KEYRING, or an existence
// check's FILE/DIR/PATH) is a path on disk.
ValueKind kind_from_type_name(const std::string& type_name) {
    std::string upper;
    for (char c : type_name.substr(0, type_name.find('{'))) {
        upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (upper.find("DIR") != std::string::npos) {
        return ValueKind::directory;
    }
    for (std::string_view word : {"FILE", "PATH", "DB", "ARCHIVE", "KEYRING", "EML", "SOURCE"}) {
        if (upper.find(word) != std::string::npos) {
            return ValueKind::file;
        }
    }
    return ValueKind::none;
}

std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

void collect_options(CLI::App& app, std::vector<OptionSpec>& options,
                     std::vector<PositionalSpec>& positionals) {
    for (CLI::Option* opt : app.get_options()) {
        if (opt->get_group().empty()) {
            continue; // hidden (e.g. the refused --secret)
        }
        std::string type_name = opt->get_type_name();
        if (!opt->nonpositional()) {
            PositionalSpec positional;
            positional.name = opt->get_name(true);
            positional.choices = choices_from_type_name(type_name);
            positional.kind = kind_from_type_name(type_name);
            positional.many = opt->get_items_expected_max() > 1;
            positionals.push_back(std::move(positional));
            continue;
        }
        OptionSpec spec;
        for (const auto& name : opt->get_snames()) {
            spec.names.push_back("-" + name);
        }
        for (const auto& name : opt->get_lnames()) {
            spec.names.push_back("--" + name);
        }
        spec.description = first_line(opt->get_description());
        spec.takes_value = opt->get_items_expected_max() > 0;
        if (spec.takes_value) {
            spec.value_name = type_name.substr(0, type_name.find(':'));
            spec.choices = choices_from_type_name(type_name);
            spec.list = opt->get_delimiter() == ',';
            spec.kind = spec.choices.empty() ? kind_from_type_name(type_name) : ValueKind::none;
            // Two flags mean the same thing in every command: --target names a target of the
            // config file, --status one or more archive statuses (comma-separated).
            if (opt->check_lname("target")) {
                spec.kind = ValueKind::target;
            } else if (opt->check_lname("status") && spec.choices.empty()) {
                for (auto status : {archive::EventStatus::received, archive::EventStatus::delivered,
                                    archive::EventStatus::failed, archive::EventStatus::dead}) {
                    spec.choices.emplace_back(archive::to_string(status));
                }
                spec.list = true;
            }
        }
        spec.repeatable = opt->get_expected_max() > 1 ||
                          opt->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
        options.push_back(std::move(spec));
    }
    // Option groups are unnamed subcommands whose options belong to this command.
    std::function<bool(CLI::App*)> unnamed = [](CLI::App* sub) { return sub->get_name().empty(); };
    for (CLI::App* group : app.get_subcommands(unnamed)) {
        collect_options(*group, options, positionals);
    }
}

CommandSpec describe(CLI::App& app, std::vector<std::string> path,
                     const std::vector<OptionSpec>& inherited) {
    CommandSpec spec;
    spec.path = std::move(path);
    spec.description = first_line(app.get_description());
    collect_options(app, spec.options, spec.positionals);
    // Global flags fall through to subcommands: offer the parents' options too, unless the
    // command has its own of that name (its own -h,--help).
    for (const auto& parent_option : inherited) {
        bool shadowed = std::ranges::any_of(spec.options, [&](const OptionSpec& own) {
            return std::ranges::find_first_of(own.names, parent_option.names) != own.names.end();
        });
        if (!shadowed) {
            spec.options.push_back(parent_option);
        }
    }
    std::function<bool(CLI::App*)> named = [](CLI::App* sub) {
        return !sub->get_name().empty() && !sub->get_disabled();
    };
    for (CLI::App* sub : app.get_subcommands(named)) {
        auto child_path = spec.path;
        child_path.push_back(sub->get_name());
        std::vector<OptionSpec> passed = spec.options;
        std::erase_if(passed, [](const OptionSpec& o) {
            return std::ranges::find(o.names, "--version") != o.names.end();
        });
        spec.children.push_back(describe(*sub, std::move(child_path), passed));
    }
    return spec;
}

void walk(const CommandSpec& command, const std::function<void(const CommandSpec&)>& visit) {
    visit(command);
    for (const auto& child : command.children) {
        walk(child, visit);
    }
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) {
        out += out.empty() ? "" : std::string(separator);
        out += item;
    }
    return out;
}

std::vector<std::string> child_names(const CommandSpec& command) {
    std::vector<std::string> out;
    for (const auto& child : command.children) {
        out.push_back(child.path.back());
    }
    return out;
}

// Single-quotes `s` for bash, zsh and fish alike when it has no quote or backslash; otherwise
// for the shell `shell` names.
std::string single_quote(std::string_view s, std::string_view shell) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += shell == "fish" ? "\\'" : "'\\''";
        } else if (c == '\\' && shell == "fish") {
            out += "\\\\";
        } else {
            out += c;
        }
    }
    return out + "'";
}

// The comment block each script starts with.
std::string generated_note(std::string_view shell) {
    std::string name(shell);
    return "# " + name + " completion for hookctl.\n# Generated by `hookctl completion " + name +
           "` from the command tree; do not edit.\n# Regenerate the checked-in copies with "
           "`cmake --build BUILD --target regen-completions`.\n";
}

// bash: one function walks the words typed so far to find the command, skipping options and
// their values, then offers that command's subcommands, options or the option's values.
std::string bash_script(const CommandSpec& root) {
    std::ostringstream out;
    out << generated_note("bash") << "\n";

    out << "# The subcommands of a command path.\n_hookctl_subcommands() {\n    case \"$1\" in\n";
    walk(root, [&](const CommandSpec& c) {
        if (!c.children.empty()) {
            out << "        " << single_quote(c.joined(" "), "bash") << ") echo "
                << single_quote(join(child_names(c), " "), "bash") << " ;;\n";
        }
    });
    out << "    esac\n}\n\n";

    out << "# The options of a command path.\n_hookctl_options() {\n    case \"$1\" in\n";
    walk(root, [&](const CommandSpec& c) {
        std::vector<std::string> names;
        for (const auto& o : c.options) {
            names.insert(names.end(), o.names.begin(), o.names.end());
        }
        out << "        " << single_quote(c.joined(" "), "bash") << ") echo "
            << single_quote(join(names, " "), "bash") << " ;;\n";
    });
    out << "    esac\n}\n\n";

    out << "# What the value of option $2 of command path $1 completes to: 'words W...', 'list\n"
           "# W...' (words joined by commas), 'file', 'directory', 'target' or 'any'; nothing\n"
           "# when the option takes no value.\n"
           "_hookctl_value() {\n    case \"$1|$2\" in\n";
    auto value_of = [](const std::vector<std::string>& choices, bool list,
                       ValueKind kind) -> std::string {
        if (!choices.empty()) {
            return (list ? "list " : "words ") + join(choices, " ");
        }
        switch (kind) {
        case ValueKind::file:
            return "file";
        case ValueKind::directory:
            return "directory";
        case ValueKind::target:
            return "target";
        case ValueKind::none:
            break;
        }
        return "any";
    };
    walk(root, [&](const CommandSpec& c) {
        for (const auto& o : c.options) {
            if (!o.takes_value) {
                continue;
            }
            std::vector<std::string> keys;
            for (const auto& name : o.names) {
                keys.push_back(single_quote(c.joined(" ") + "|" + name, "bash"));
            }
            out << "        " << join(keys, "|") << ") echo "
                << single_quote(value_of(o.choices, o.list, o.kind), "bash") << " ;;\n";
        }
    });
    out << "    esac\n}\n\n";

    out << "# What a positional argument of command path $1 completes to.\n"
           "_hookctl_positional() {\n    case \"$1\" in\n";
    walk(root, [&](const CommandSpec& c) {
        if (!c.positionals.empty()) {
            const auto& p = c.positionals.front();
            out << "        " << single_quote(c.joined(" "), "bash") << ") echo "
                << single_quote(value_of(p.choices, false, p.kind), "bash") << " ;;\n";
        }
    });
    out << "    esac\n}\n\n";

    out << R"BASH(# The target names of the config file: hookctl reads it (--config as typed, if any).
_hookctl_targets() {
    local command="${COMP_WORDS[0]/#\~/$HOME}" config="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --config)
                config="${COMP_WORDS[i + 1]}"
                [[ "$config" == "=" ]] && config="${COMP_WORDS[i + 2]}"
                ;;
            --config=*) config="${COMP_WORDS[i]#--config=}" ;;
        esac
    done
    config="${config/#\~/$HOME}"
    "$command" ${config:+--config "$config"} completion --list-targets 2>/dev/null
}

_hookctl_complete_value() {
    local what="$1" cur="$2" done
    case "$what" in
        words\ *) COMPREPLY=($(compgen -W "${what#words }" -- "$cur")) ;;
        list\ *)
            # The word after the last comma; the ones before it stay as typed.
            done=""
            [[ "$cur" == *,* ]] && done="${cur%,*},"
            COMPREPLY=($(compgen -P "$done" -W "${what#list }" -- "${cur##*,}"))
            ;;
        target) COMPREPLY=($(compgen -W "$(_hookctl_targets)" -- "$cur")) ;;
        file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            ;;
        directory)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$cur"))
            ;;
        *) COMPREPLY=() ;;
    esac
}

_hookctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="hookctl" word subs i
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD - 1]}"
    # Find the command path: skip options and their values ('--opt value', '--opt=value').
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ "$word" == "=" ]]; then
            ((i++))
            continue
        fi
        if [[ "$word" == -* ]]; then
            if [[ "$word" != *=* && -n "$(_hookctl_value "$path" "$word")" &&
                "${COMP_WORDS[i + 1]}" != "=" ]] && ((i + 1 < COMP_CWORD)); then
                ((i++))
            fi
            continue
        fi
        subs=" $(_hookctl_subcommands "$path") "
        if [[ "$subs" == *" $word "* ]]; then
            path="$path $word"
        fi
    done
    # The value of an option: '--opt <TAB>', '--opt=<TAB>' (bash splits at '=').
    local option="" value
    if [[ "$cur" == "=" && "$prev" == -* ]]; then
        option="$prev"
        cur=""
    elif [[ "$prev" == "=" ]] && ((COMP_CWORD > 1)); then
        option="${COMP_WORDS[COMP_CWORD - 2]}"
    elif [[ "$prev" == -* && "$prev" != *=* ]]; then
        option="$prev"
    fi
    if [[ -n "$option" ]]; then
        value="$(_hookctl_value "$path" "$option")"
        if [[ -n "$value" ]]; then
            _hookctl_complete_value "$value" "$cur"
            return 0
        fi
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_hookctl_options "$path")" -- "$cur"))
        return 0
    fi
    subs="$(_hookctl_subcommands "$path")"
    if [[ -n "$subs" ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return 0
    fi
    _hookctl_complete_value "$(_hookctl_positional "$path")" "$cur"
}

complete -F _hookctl hookctl
)BASH";
    return out.str();
}

// zsh: one _arguments function per command, `*:: :->args` dispatching to the subcommand's.
std::string zsh_escape_description(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else if (c == '[' || c == ']' || c == ':' || c == '\\') {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
    return out;
}

std::string zsh_action(const std::vector<std::string>& choices, bool list, ValueKind kind) {
    if (!choices.empty()) {
        return list ? "_values -s , value " + join(choices, " ") : "(" + join(choices, " ") + ")";
    }
    switch (kind) {
    case ValueKind::file:
        return "_files";
    case ValueKind::directory:
        return "_files -/";
    case ValueKind::target:
        return "__hookctl_targets";
    case ValueKind::none:
        break;
    }
    return " ";
}

std::string zsh_function_name(const CommandSpec& c) {
    std::string name = "_" + c.joined("_");
    std::ranges::replace(name, '-', '_');
    return name;
}

void zsh_function(std::ostream& out, const CommandSpec& c) {
    out << zsh_function_name(c) << "() {\n";
    if (!c.children.empty()) {
        out << "    local curcontext=\"$curcontext\" state line\n"
               "    typeset -A opt_args\n";
    }
    out << "    _arguments -s -S" << (c.children.empty() ? "" : " -C");
    for (const auto& o : c.options) {
        for (const auto& name : o.names) {
            std::string spec = o.repeatable ? "*" + name : name;
            if (o.takes_value) {
                spec += name.starts_with("--") ? "=" : "+";
            }
            spec += "[" + zsh_escape_description(o.description) + "]";
            if (o.takes_value) {
                std::string message = o.value_name.empty() ? "VALUE" : o.value_name;
                spec += ":" + zsh_escape_description(message) + ":" +
                        zsh_action(o.choices, o.list, o.kind);
            }
            out << " \\\n        '" << spec << "'";
        }
    }
    if (!c.children.empty()) {
        out << " \\\n        '1: :->command' \\\n        '*:: :->args'\n";
        out << "    case $state in\n        command)\n            local -a commands\n"
               "            commands=(\n";
        for (const auto& child : c.children) {
            out << "                '" << zsh_escape_description(child.path.back()) << ":"
                << zsh_escape_description(child.description) << "'\n";
        }
        out << "            )\n            _describe -t commands '" << c.joined(" ")
            << " command' commands\n            ;;\n        args)\n"
               "            case $line[1] in\n";
        for (const auto& child : c.children) {
            out << "                " << child.path.back() << ") " << zsh_function_name(child)
                << " ;;\n";
        }
        out << "            esac\n            ;;\n    esac\n";
    } else {
        int index = 1;
        for (const auto& p : c.positionals) {
            std::string message = zsh_escape_description(p.name);
            if (p.many) {
                out << " \\\n        '*:" << message << ":" << zsh_action(p.choices, false, p.kind)
                    << "'";
            } else {
                out << " \\\n        '" << index << ":" << message << ":"
                    << zsh_action(p.choices, false, p.kind) << "'";
            }
            ++index;
        }
        out << "\n";
    }
    out << "}\n\n";
}

std::string zsh_script(const CommandSpec& root) {
    std::ostringstream out;
    out << "#compdef hookctl\n" << generated_note("zsh") << "\n";
    out << R"ZSH(# The target names of the config file: hookctl reads it (--config as typed, if any).
__hookctl_targets() {
    local -a line targets config
    local i
    line=(${(z)BUFFER})
    for ((i = 2; i <= $#line; i++)); do
        case $line[i] in
            --config) config=(--config ${~line[i+1]}) ;;
            --config=*) config=(--config ${~line[i]#--config=}) ;;
        esac
    done
    targets=(${(f)"$(${~line[1]} $config completion --list-targets 2>/dev/null)"})
    _describe -t targets target targets
}

)ZSH";
    walk(root, [&](const CommandSpec& c) { zsh_function(out, c); });
    out << "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n"
           "    _hookctl \"$@\"\nelse\n    compdef _hookctl hookctl\nfi\n";
    return out.str();
}

// fish: a helper finds the command path like the bash function; every entry is conditioned
// on it.
std::string fish_script(const CommandSpec& root) {
    std::ostringstream out;
    out << generated_note("fish") << "\n";
    out << "# The subcommands of a command path.\nfunction __hookctl_subcommands\n"
           "    switch $argv[1]\n";
    walk(root, [&](const CommandSpec& c) {
        if (!c.children.empty()) {
            out << "        case " << single_quote(c.joined(" "), "fish")
                << "\n            printf '%s\\n' " << join(child_names(c), " ") << "\n";
        }
    });
    out << "    end\nend\n\n";
    out << "# The options of a command path that take a value.\nfunction __hookctl_value_options\n"
           "    switch $argv[1]\n";
    walk(root, [&](const CommandSpec& c) {
        std::vector<std::string> names;
        for (const auto& o : c.options) {
            if (o.takes_value) {
                names.insert(names.end(), o.names.begin(), o.names.end());
            }
        }
        if (!names.empty()) {
            out << "        case " << single_quote(c.joined(" "), "fish")
                << "\n            printf '%s\\n' " << join(names, " ") << "\n";
        }
    });
    out << "    end\nend\n\n";
    out << R"FISH(# The command path of the words typed so far, e.g. 'hookctl events list'.
function __hookctl_path
    set -l words (commandline -opc)
    set -l path hookctl
    set -l skip 0
    for word in $words[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            if not string match -q -- '*=*' $word
                and contains -- $word (__hookctl_value_options "$path")
                set skip 1
            end
            continue
        end
        if contains -- $word (__hookctl_subcommands "$path")
            set path "$path $word"
        end
    end
    echo $path
end

# The target names of the config file: hookctl reads it (--config as typed, if any).
function __hookctl_targets
    set -l words (commandline -opc)
    set -l config
    for i in (seq 2 (count $words))
        if test "$words[$i]" = --config; and test $i -lt (count $words)
            set config --config $words[(math $i + 1)]
        else if string match -q -- '--config=*' $words[$i]
            set config --config (string replace -- '--config=' '' $words[$i])
        end
    end
    $words[1] $config completion --list-targets 2>/dev/null
end

# Each of the words in $argv after the commas already typed: --status failed,d -> failed,dead.
function __hookctl_list
    set -l done (string replace -r -- '[^,]*$' '' (commandline -ct))
    printf "$done%s\n" $argv
end

complete -c hookctl -f
)FISH";
    walk(root, [&](const CommandSpec& c) {
        std::string condition =
            "-n " +
            single_quote("test (__hookctl_path) = " + single_quote(c.joined(" "), "bash"), "fish");
        out << "\n# " << c.joined(" ") << "\n";
        for (const auto& child : c.children) {
            out << "complete -c hookctl " << condition << " -a " << child.path.back() << " -d "
                << single_quote(child.description, "fish") << "\n";
        }
        for (const auto& o : c.options) {
            out << "complete -c hookctl " << condition;
            for (const auto& name : o.names) {
                if (name.starts_with("--")) {
                    out << " -l " << name.substr(2);
                } else if (name.size() == 2) {
                    out << " -s " << name.substr(1);
                } else {
                    out << " -o " << name.substr(1);
                }
            }
            if (o.takes_value) {
                out << " -r";
                if (!o.choices.empty() && o.list) {
                    out << " -f -a "
                        << single_quote("(__hookctl_list " + join(o.choices, " ") + ")", "fish");
                } else if (!o.choices.empty()) {
                    out << " -f -a " << single_quote(join(o.choices, " "), "fish");
                } else if (o.kind == ValueKind::target) {
                    out << " -f -a '(__hookctl_targets)'";
                } else if (o.kind == ValueKind::directory) {
                    out << " -f -a '(__fish_complete_directories)'";
                } else if (o.kind == ValueKind::file) {
                    out << " -F";
                }
            }
            out << " -d " << single_quote(o.description, "fish") << "\n";
        }
        if (c.children.empty() && !c.positionals.empty()) {
            const auto& p = c.positionals.front();
            if (!p.choices.empty()) {
                out << "complete -c hookctl " << condition << " -a "
                    << single_quote(join(p.choices, " "), "fish") << "\n";
            } else if (p.kind != ValueKind::none) {
                out << "complete -c hookctl " << condition << " -F\n";
            }
        }
    });
    return out.str();
}

// `completion`'s flags, and the command tree it describes.
struct CompletionOptions {
    std::string shell;
    bool list_targets = false;
    CLI::App* app = nullptr;
};

Result<ExitCode> run_completion(const CompletionOptions& opt, Context& context) {
    if (opt.list_targets) {
        if (auto config = http::load_config_or_default(context.global.config)) {
            for (const auto& target : config->targets) {
                std::cout << target.name << '\n';
            }
        }
        return ExitCode::ok;
    }
    if (opt.shell.empty()) {
        return fail(ExitCode::usage, "give a shell: hookctl completion bash|zsh|fish");
    }
    CommandSpec root = describe(*opt.app, {"hookctl"}, {});
    if (opt.shell == "bash") {
        std::cout << bash_script(root);
    } else if (opt.shell == "zsh") {
        std::cout << zsh_script(root);
    } else {
        std::cout << fish_script(root);
    }
    std::cout.flush();
    return std::cout ? ExitCode::ok : ExitCode::environment;
}

} // namespace

void register_completion(CLI::App& app, Context& context) {
    auto opt = std::make_shared<CompletionOptions>();
    opt->app = &app;
    auto* cmd = app.add_subcommand(
        "completion", "Print a shell completion script generated from the command tree");
    auto* shell_option = cmd->add_option("SHELL", opt->shell, "The shell: bash, zsh or fish")
                             ->check(CLI::IsMember({"bash", "zsh", "fish"}));
    // Hidden, for the scripts: the target names of the config file, one a line; nothing (and
    // success) when there is no config file or it cannot be read, as a completion must not fail.
    cmd->add_flag("--list-targets", opt->list_targets)->group("")->excludes(shell_option);
    // The tree is walked when the command runs, so every command registered is included.
    set_run(*cmd, opt, context, run_completion);
}

} // namespace hookctl::cli
