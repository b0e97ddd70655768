/* Fixture: a plugin built for a future ABI major (the loader must refuse
 * it, naming the file and both versions). */
#include <tmpipe/plugin.h>

static const tm_observer_ops ops = { 0 };

static const tm_plugin_desc desc = {
	TM_PLUGIN_ABI_MAJOR + 1, 0, (uint32_t)sizeof(tm_plugin_desc),
	TM_PLUGIN_OBSERVER, "bad_abi", "1.0", "fixture: future ABI",
	NULL, &ops, { 0 }
};

TM_PLUGIN_EXPORT const tm_plugin_desc *tmpipe_plugin_init(void);
TM_PLUGIN_EXPORT const tm_plugin_desc *
tmpipe_plugin_init(void)
{
	return &desc;
}
