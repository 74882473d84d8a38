/* ctl: the control socket. (Placeholder until the ctl module lands.) */
#include "sup_internal.h"

void ci_sup_ctl_open(ci_sup_t *sup)
{
    (void)sup;
}

void ci_sup_ctl_close(ci_sup_t *sup)
{
    (void)sup;
}

bool ci_sup_state_is_stopped(ci_sup_t *sup, const char *name)
{
    (void)sup;
    (void)name;
    return false;
}
