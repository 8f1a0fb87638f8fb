/* dlx toolbox guard: an audit module of glibc's loader (rtld-audit(7)).
 *
 * Every wrapper of a dynamic tool starts the toolbox's loader with
 * `--audit /.dlx/lib/dlx-guard.so`. The loader then asks la_objsearch about each
 * object it is about to load, a dependency or a dlopen, and for each place it
 * would look. The guard lets through bare names, which the loader goes on to
 * search, and files directly in the toolbox's own library directory, and refuses
 * every other path. So a tool loads nothing the container names by path: no
 * Kerberos plugin of its krb5.conf, no GSS-API mechanism of /etc/gss/mech, no
 * PKCS#11 module of p11-kit, whatever other library a configuration file of the
 * container points at.
 *
 * A command-line option, unlike LD_AUDIT, is not inherited: what a tool starts
 * (`strace -f CMD`) runs with its own loader, unguarded, as it would without dlx.
 *
 * No libc: built by build.rs with -shared -nostdlib, and loaded into its own link
 * map namespace, where it needs nothing else. */

typedef unsigned long uintptr_t;

/* The toolbox's library directory inside a session (`--library-path`). */
static const char lib_dir[] = "/.dlx/lib/";

/* Accept version 1 of the interface, which every loader that knows --audit
 * supports: la_objsearch has not changed since. */
unsigned int la_version(unsigned int version)
{
    return version >= 1 ? 1 : 0;
}

static int has_slash(const char *s)
{
    for (; *s; s++)
        if (*s == '/')
            return 1;
    return 0;
}

/* `name` is a file directly in lib_dir: the prefix, then a file name that is
 * neither empty, `.` nor `..`, and holds no further slash. */
static int in_lib_dir(const char *name)
{
    const char *p = lib_dir;
    for (; *p; p++, name++)
        if (*name != *p)
            return 0;
    if (name[0] == '\0' || (name[0] == '.' && name[1] == '\0') ||
        (name[0] == '.' && name[1] == '.' && name[2] == '\0'))
        return 0;
    return !has_slash(name);
}

/* Called with the name asked for (LA_SER_ORIG) and then with each path tried.
 * Returning the name keeps it; returning 0 skips that path, or, for an asked-for
 * path, refuses the object altogether. */
char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    (void)flag;
    if (!has_slash(name) || in_lib_dir(name))
        return (char *)name;
    return 0;
}
