// The story on `npm start`'s default store: the embedded PostgreSQL cluster under BERTH_DATA_DIR.
import { platformStory } from "./support/platform-story.js";

platformStory("embedded");
