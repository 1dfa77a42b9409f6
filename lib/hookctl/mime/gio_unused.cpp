// The libmount and libselinux functions that the statically linked GIO refers to, defined so
// that hookctl does not load libmount, libblkid, libselinux and libpcre2-8 at every start
// (HOOKCTL_STATIC_DEPS builds only; see CMakeLists.txt's link settings).
//
// GMime's g_mime_init registers its GIO stream type, which pulls GIO's GFile code into the link
// and, through it, GIO's Unix mount table (libmount) and file security contexts (libselinux).
// hookctl reads messages through GMime's memory and mmap streams and never calls GIO's file API,
// so none of these run; Debian ships libmount without a static archive, and loading the four
// shared libraries cost 16% of `hookctl verify`'s CPU time. Should GIO ever reach one of them,
// it stops with a message saying so rather than misbehave.
#include <cstdio>
#include <cstdlib>

namespace {

[[noreturn]] void unreachable(const char* function) {
    std::fprintf(stderr,
                 "hookctl: internal error: GIO called %s, which this build does not link "
                 "(HOOKCTL_STATIC_DEPS); please report it\n",
                 function);
    std::abort();
}

} // namespace

#define HOOKCTL_NOT_LINKED(name)                                                                   \
    extern "C" [[noreturn]] void name() {                                                          \
        unreachable(#name);                                                                        \
    }

// libmount: GIO's GUnixMount API and mount monitor.
HOOKCTL_NOT_LINKED(mnt_fs_get_fstype)
HOOKCTL_NOT_LINKED(mnt_fs_get_options)
HOOKCTL_NOT_LINKED(mnt_fs_get_root)
HOOKCTL_NOT_LINKED(mnt_fs_get_source)
HOOKCTL_NOT_LINKED(mnt_fs_get_target)
HOOKCTL_NOT_LINKED(mnt_fs_strdup_options)
HOOKCTL_NOT_LINKED(mnt_free_iter)
HOOKCTL_NOT_LINKED(mnt_free_table)
HOOKCTL_NOT_LINKED(mnt_get_builtin_optmap)
HOOKCTL_NOT_LINKED(mnt_get_fstab_path)
HOOKCTL_NOT_LINKED(mnt_has_regular_mtab)
HOOKCTL_NOT_LINKED(mnt_new_iter)
HOOKCTL_NOT_LINKED(mnt_new_table)
HOOKCTL_NOT_LINKED(mnt_optstr_get_flags)
HOOKCTL_NOT_LINKED(mnt_table_next_fs)
HOOKCTL_NOT_LINKED(mnt_table_parse_fstab)
HOOKCTL_NOT_LINKED(mnt_table_parse_mtab)

// libselinux: the "selinux::context" file attribute, read only when SELinux is enabled.
extern "C" int is_selinux_enabled() {
    return 0;
}
HOOKCTL_NOT_LINKED(fgetfilecon_raw)
HOOKCTL_NOT_LINKED(freecon)
HOOKCTL_NOT_LINKED(getfilecon_raw)
HOOKCTL_NOT_LINKED(lgetfilecon_raw)
HOOKCTL_NOT_LINKED(setfilecon_raw)
